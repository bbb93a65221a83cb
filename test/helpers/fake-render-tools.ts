import { GitCheckoutRequest, HelmTemplateRequest, RenderTools } from "../../src/render/build-desired-state";
import { describeGitRef, GitRef } from "../../src/desired-state/git-ref";
import { GroupKind } from "../../src/desired-state/identify";
import { KubeObject, Scope } from "../../src/desired-state/object-id";
import { OverlayRequest } from "../../src/render/kustomize-overlay";
import { OciArtifactRequest } from "../../src/render/oci-artifact";

/** Render tools for unit tests: answers from tables, records what was asked. */
export class FakeRenderTools implements RenderTools {
  readonly helmRequests: HelmTemplateRequest[] = [];
  readonly overlayRequests: OverlayRequest[] = [];
  /** Answers overlay builds when set (e.g. the real kubectl); otherwise they fail. */
  overlayBuilder?: (request: OverlayRequest) => Promise<string>;
  readonly gitRequests: { readonly url: string; readonly ref: GitRef; readonly request?: GitCheckoutRequest }[] = [];
  /** Folders standing for checkouts of other git repositories, by URL; no git otherwise. */
  readonly gitCheckouts: Record<string, string> = {};
  readonly ociRequests: OciArtifactRequest[] = [];
  /** Folders standing for unpacked OCI artifacts, by `oci://` URL; no registry otherwise. */
  readonly ociArtifacts: Record<string, string> = {};
  /** Answers URL fetches (externalSourceRef) when set; no network otherwise. */
  fetcher?: (url: string, unit: string) => Promise<string>;
  constructor(
    private readonly charts: Record<string, (r: HelmTemplateRequest) => string> = {},
    private readonly live: KubeObject[] = [],
    private readonly kustomize: Record<string, string> = {},
  ) {}

  helmTemplate(request: HelmTemplateRequest): Promise<string> {
    this.helmRequests.push(request);
    const render = this.charts[request.chart];
    return render ? Promise.resolve(render(request)) : Promise.reject(new Error(`chart "${request.chart}" not found in ${request.repo}`));
  }
  kustomizeBuild(absDir: string): Promise<string> {
    const key = Object.keys(this.kustomize).find((k) => absDir.endsWith(k));
    return key ? Promise.resolve(this.kustomize[key]!) : Promise.reject(new Error(`no kustomization for ${absDir}`));
  }
  kustomizeOverlay(request: OverlayRequest): Promise<string> {
    this.overlayRequests.push(request);
    return this.overlayBuilder
      ? this.overlayBuilder(request)
      : Promise.reject(new Error(`no kustomize overlay in unit tests (${request.unit})`));
  }
  readLive(kind: "ConfigMap" | "Secret", namespace: string, name: string): Promise<KubeObject | undefined> {
    return Promise.resolve(this.live.find((o) => o.kind === kind && o.metadata.namespace === namespace && o.metadata.name === name));
  }
  /** Scopes the fake cluster serves, by `group/Kind`. */
  readonly served = new Map<GroupKind, Scope>();
  readonly discovered: string[] = [];
  discoverScopes(kinds: readonly { apiVersion: string; kind: string }[]): Promise<Map<GroupKind, Scope>> {
    this.discovered.push(...kinds.map((k) => `${k.apiVersion}/${k.kind}`));
    return Promise.resolve(this.served);
  }
  fetchText(url: string, unit: string): Promise<string> {
    return this.fetcher ? this.fetcher(url, unit) : Promise.reject(new Error(`no network in unit tests (${url})`));
  }
  checkoutGit(url: string, ref: GitRef, request?: GitCheckoutRequest): Promise<string> {
    this.gitRequests.push({ url, ref, request });
    const dir = this.gitCheckouts[url];
    if (dir !== undefined) return Promise.resolve(dir);
    return Promise.reject(new Error(`no git in unit tests (${url} at ${describeGitRef(ref)})`));
  }
  pullOciArtifact(request: OciArtifactRequest): Promise<string> {
    this.ociRequests.push(request);
    const dir = this.ociArtifacts[request.source.url];
    if (dir !== undefined) return Promise.resolve(dir);
    return Promise.reject(new Error(`no registry in unit tests (${request.source.url})`));
  }
}
