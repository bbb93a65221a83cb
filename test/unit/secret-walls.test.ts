// Namespaces as walls (cross-namespace references refused) and Secret-derived values masked in every output.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allObjects, DesiredState } from "../../src/desired-state/desired-state";
import { parseFluxKustomization } from "../../src/desired-state/flux-kustomization";
import { parseHelmRelease } from "../../src/desired-state/helm-release";
import { loadConfigFolder } from "../../src/desired-state/load-desired-state";
import { DesiredStateError, SourceLocation } from "../../src/desired-state/manifest-error";
import { KubeObject } from "../../src/desired-state/object-id";
import { helmReleaseWalls, kustomizationWalls } from "../../src/desired-state/namespace-walls";
import { MASK, maskLeaves, maskQuoted, redactor, secretObjectForms, sensitiveForms } from "../../src/desired-state/sensitive-values";
import { sourcePolicy } from "../../src/desired-state/source-policy";
import { renderPreviewMarkdown, renderPreviewText } from "../../src/preview/render-preview";
import { buildDesiredState } from "../../src/render/build-desired-state";
import { summarizePreview } from "../../src/reconcile/field-diffs";
import { defaultPipelineOptions, reconcile } from "../../src/reconcile/pipeline";
import { EngineError, EngineStep, Ports } from "../../src/reconcile/ports";
import { PreviewReport } from "../../src/reconcile/preview-report";
import { objectUrn } from "../../src/reconcile/pulumi-stack";
import { runRedaction } from "../../src/reconcile/run-redaction";
import { strictBuild } from "../helpers/assertions";
import { FakeRenderTools } from "../helpers/fake-render-tools";
import { tempDir, writeFiles } from "../helpers/temp-dir";

const at: SourceLocation = { file: "clusters/dev/steal.yaml", line: 4, document: 1 };
const walls = sourcePolicy();
const open = sourcePolicy({ allowCrossNamespaceRefs: true });
const STOLEN = "hunter2-database-password";
const b64 = (s: string) => Buffer.from(s).toString("base64");

const v1Release = (valuesFrom: unknown[], extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "helm.fluxcd.io/v1",
  kind: "HelmRelease",
  metadata: { name: "steal", namespace: "team-b" },
  spec: { chart: { repository: "https://charts.invalid", name: "app", version: "1.0.0" }, valuesFrom, ...extra },
});
const helmRepo = (namespace: string): KubeObject => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "HelmRepository",
  metadata: { name: "charts", namespace },
  spec: { url: "https://charts.invalid" },
});

describe("namespace walls", () => {
  it("refuses a Flux v1 secretKeyRef naming another namespace, by name, at file:line, with the setting that allows it", () => {
    const spec = parseHelmRelease(v1Release([{ secretKeyRef: { name: "db", namespace: "team-a" } }]), at, []);
    const [error, ...rest] = helmReleaseWalls(spec, walls);
    assert.equal(rest.length, 0);
    assert.match(
      error!.message,
      /^clusters\/dev\/steal\.yaml:4 \(document 2\): HelmRelease\/team-b\/steal: valuesFrom Secret\/team-a\/db is in another namespace;/,
    );
    assert.match(error!.message, /set ferry:allowCrossNamespaceRefs \(or --allow-cross-namespace-refs\) for single-tenant setups/);
    assert.deepEqual(helmReleaseWalls(spec, open), []);
  });

  it("resolves refs without a namespace, valueFileSecrets and Flux v2 valuesFrom in the release's own namespace, whatever its targetNamespace", () => {
    const v1 = parseHelmRelease(
      v1Release([{ configMapKeyRef: { name: "cm" } }, { secretKeyRef: { name: "db", namespace: "team-b" } }], {
        valueFileSecrets: [{ name: "old" }],
        targetNamespace: "elsewhere",
      }),
      at,
      [],
    );
    assert.deepEqual(
      v1.valuesFrom.map((r) => ("namespace" in r ? r.namespace : "")),
      ["team-b", "team-b", "team-b"],
    );
    assert.equal(v1.targetNamespace, "elsewhere");
    assert.deepEqual(helmReleaseWalls(v1, walls), []);
    const v2 = parseHelmRelease(
      {
        apiVersion: "helm.toolkit.fluxcd.io/v2",
        kind: "HelmRelease",
        metadata: { name: "web", namespace: "team-b" },
        spec: {
          chart: { spec: { chart: "app", sourceRef: { kind: "HelmRepository", name: "charts" } } },
          valuesFrom: [{ kind: "Secret", name: "db" }],
          targetNamespace: "team-c",
        },
      },
      at,
      [helmRepo("team-b")],
    );
    assert.deepEqual(helmReleaseWalls(v2, walls), []);
  });

  it("allows a sourceRef to another namespace by default, as Flux does, and refuses it with allowCrossNamespaceSourceRefs: false", () => {
    const lockdown = sourcePolicy({ allowCrossNamespaceSourceRefs: false });
    const release = parseHelmRelease(
      {
        apiVersion: "helm.toolkit.fluxcd.io/v2",
        kind: "HelmRelease",
        metadata: { name: "web", namespace: "team-b" },
        spec: { chart: { spec: { chart: "app", sourceRef: { kind: "HelmRepository", name: "charts", namespace: "flux-system" } } } },
      },
      at,
      [helmRepo("flux-system")],
    );
    assert.match(
      helmReleaseWalls(release, lockdown)[0]!.message,
      /HelmRelease\/team-b\/web: sourceRef HelmRepository\/flux-system\/charts is in another namespace/,
    );
    assert.deepEqual(helmReleaseWalls(release, walls), []);
    assert.deepEqual(helmReleaseWalls(release, open), []);

    const k = (sourceRef: Record<string, string>) =>
      parseFluxKustomization(
        {
          apiVersion: "kustomize.toolkit.fluxcd.io/v1",
          kind: "Kustomization",
          metadata: { name: "apps", namespace: "team-b" },
          spec: { path: "./apps", prune: true, sourceRef },
        },
        at,
      );
    assert.match(
      kustomizationWalls(k({ kind: "GitRepository", name: "infra", namespace: "flux-system" }), lockdown)[0]!.message,
      /Kustomization\/team-b\/apps: sourceRef GitRepository\/flux-system\/infra is in another namespace/,
    );
    assert.deepEqual(kustomizationWalls(k({ kind: "GitRepository", name: "infra" }), lockdown), []);
    assert.deepEqual(kustomizationWalls(k({ kind: "GitRepository", name: "infra", namespace: "flux-system" }), walls), []);
  });

  it("refuses the build before reading the other namespace's Secret, and renders it when the stack allows cross-namespace refs", async () => {
    const repo = tempDir();
    writeFiles(repo, {
      "c/steal.yaml":
        "apiVersion: helm.fluxcd.io/v1\nkind: HelmRelease\nmetadata: {name: steal, namespace: team-b}\nspec:\n" +
        "  chart: {repository: 'https://charts.invalid', name: app, version: 1.0.0}\n" +
        "  valuesFrom: [{secretKeyRef: {name: db, namespace: team-a, key: values.yaml}}]\n",
    });
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "db", namespace: "team-a" },
      data: { "values.yaml": b64(`stolen: ${STOLEN}\n`) },
    };
    const tools = new FakeRenderTools({ app: () => "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loot}\ndata: {k: v}\n" }, [secret]);
    await assert.rejects(strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools)), (err: unknown) => {
      assert.ok(err instanceof DesiredStateError);
      assert.match(
        err.message,
        /c\/steal\.yaml:1 \(document 1\): HelmRelease\/team-b\/steal: valuesFrom Secret\/team-a\/db is in another namespace/,
      );
      return true;
    });
    assert.equal(tools.helmRequests.length, 0, "the chart was rendered with the other namespace's values");
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools, { policy: open });
    assert.equal(allObjects(state)[0]?.sensitive, true);
  });
});

describe("sensitive values", () => {
  it("takes the text, every nested leaf (strings and numbers) and their base64 and hex forms, but no short words", () => {
    const text = `db:\n  password: ${STOLEN}\n  port: 5432\nflags: [on]\nlist: [{token: abcd-efgh}]\n`;
    const forms = sensitiveForms(text, { db: { password: STOLEN, port: 5432 }, flags: ["on"], list: [{ token: "abcd-efgh" }] });
    for (const s of [text, text.trim(), STOLEN, b64(STOLEN), Buffer.from(STOLEN).toString("hex"), "abcd-efgh", b64("abcd-efgh"), "5432"]) {
      assert.ok(forms.includes(s), s);
    }
    assert.ok(!forms.includes("on"));
  });

  it("takes a Secret object's data decoded, its base64 as written, and stringData", () => {
    const forms = secretObjectForms({ data: { a: b64("from-data-1") }, stringData: { b: "from-stringData" } });
    for (const s of ["from-data-1", b64("from-data-1"), "from-stringData", b64("from-stringData")]) assert.ok(forms.includes(s), s);
  });

  it("masks every occurrence in text and in data (keys too), the longest string first", () => {
    const r = redactor([STOLEN, "hunter2", b64(STOLEN)]);
    assert.equal(r.text(`a ${STOLEN} b ${b64(STOLEN)} c hunter2`), `a ${MASK} b ${MASK} c ${MASK}`);
    assert.deepEqual(r.data({ [STOLEN]: [`x${STOLEN}x`, 3, null], n: { deep: "hunter2!" } }), {
      [MASK]: [`x${MASK}x`, 3, null],
      n: { deep: `${MASK}!` },
    });
    assert.equal(redactor([]).active, false);
    assert.equal(redactor(["on"]).text("on and on"), "on and on");
  });

  it("keeps the shape of a sensitive object's inputs and masks every value, and masks quoted values in a refusal", () => {
    assert.deepEqual(maskLeaves({ data: { a: "x", b: 1 }, list: ["y"] }), { data: { a: MASK, b: MASK }, list: [MASK] });
    assert.equal(
      maskQuoted('ConfigMap "loot" is invalid: metadata.labels: Invalid value: "68756e746572": must be 63 characters'),
      `ConfigMap "${MASK}" is invalid: metadata.labels: Invalid value: "${MASK}": must be 63 characters`,
    );
  });

  it("marks a release that reads a Secret sensitive, records its values, and withholds helm's message when its chart fails", async () => {
    const repo = tempDir();
    const rel = (name: string, chart: string) =>
      `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: ${name}, namespace: team-b}\nspec:\n` +
      `  chart: {spec: {chart: ${chart}, sourceRef: {kind: HelmRepository, name: charts}}}\n` +
      "  valuesFrom: [{kind: Secret, name: db}, {kind: Secret, name: db, valuesKey: token, targetPath: auth.token}]\n";
    writeFiles(repo, {
      "c/source.yaml":
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: HelmRepository\nmetadata: {name: charts, namespace: team-b}\nspec: {url: http://charts.invalid}\n",
      "c/steal.yaml": rel("steal", "stolen"),
      "c/plain.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: team-b}\ndata: {k: v}\n",
    });
    const live = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "db", namespace: "team-b" },
      data: { "values.yaml": b64(`nested:\n  stolen: ${STOLEN}\n`), token: b64("tok-123456") },
    };
    // A chart that writes the value, and a value derived from it, into a ConfigMap.
    const stolenChart = (r: { values: Record<string, unknown> }) => {
      const v = (r.values.nested as { stolen: string }).stolen;
      return `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: loot}\ndata: {stolen: "${v}", derived: "${b64(v)}"}\n`;
    };
    const tools = new FakeRenderTools({ stolen: stolenChart }, [live]);
    const state = await buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), tools);
    const loot = allObjects(state).find((o) => o.id.name === "loot")!;
    const plain = allObjects(state).find((o) => o.id.name === "plain")!;
    assert.equal(loot.sensitive, true);
    assert.equal(plain.sensitive, undefined);
    for (const s of [STOLEN, b64(STOLEN), "tok-123456", b64("tok-123456")]) assert.ok(state.sensitive?.includes(s), s);

    // `{{ fail .Values.stolen }}`: helm's own message would carry the value.
    writeFiles(repo, { "c/steal.yaml": rel("steal", "failing") });
    const failing = new FakeRenderTools(
      {
        failing: (r) => {
          throw new Error(`execution error at (failing/templates/cm.yaml:1:3): ${JSON.stringify(r.values)}`);
        },
      },
      [live],
    );
    await assert.rejects(strictBuild(buildDesiredState(loadConfigFolder({ checkout: repo, path: "c" }), failing)), (err: unknown) => {
      assert.ok(err instanceof DesiredStateError);
      assert.doesNotMatch(err.message, /hunter2|tok-123456/);
      assert.match(err.message, /helm template failed at failing\/templates\/cm\.yaml:1:3; helm's message is withheld/);
      return true;
    });
  });
});

describe("what a run shows of Secret-derived values", () => {
  const lootId = { group: "", kind: "ConfigMap", namespace: "team-b", name: "loot" } as const;
  const secretId = { group: "", kind: "Secret", namespace: "team-b", name: "db" } as const;
  const state: DesiredState = {
    path: "c",
    units: [
      {
        kind: "HelmRelease",
        name: "team-b/steal",
        location: at,
        dependsOn: [],
        objects: [
          {
            id: lootId,
            object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "loot", namespace: "team-b" }, data: { stolen: STOLEN } },
            location: at,
            prune: true,
            sensitive: true,
          },
        ],
      },
    ],
    sensitive: sensitiveForms(STOLEN),
  };
  const urn = (id: typeof lootId | typeof secretId) => objectUrn("dev", id);
  const planned: EngineStep[] = [
    {
      op: "update",
      urn: urn(lootId),
      type: "kubernetes:core/v1:ConfigMap",
      detailedDiff: { "data.stolen": { kind: "update" }, "data.encoded": { kind: "add" } },
      oldInputs: { data: { stolen: "nothing here" } },
      newInputs: { data: { stolen: STOLEN, encoded: `prefix-${b64(STOLEN)}` } },
    },
    {
      op: "update",
      urn: urn(secretId),
      type: "kubernetes:core/v1:Secret",
      detailedDiff: { "data.password": { kind: "update" } },
      oldInputs: { data: { password: b64("old-password") } },
      newInputs: { data: { password: b64(STOLEN) } },
    },
  ];
  const leaks = [STOLEN, b64(STOLEN), "nothing here", b64("old-password")];
  const assertClean = (what: string, text: string) => {
    for (const s of leaks) assert.ok(!text.includes(s), `${what} shows ${s}:\n${text}`);
  };

  it("keeps the field paths and masks every value in the text, JSON and Markdown of a preview", () => {
    const hide = runRedaction(state, (id) => objectUrn("dev", id));
    const { objects, changes } = summarizePreview(hide.steps(planned));
    const report: PreviewReport = { stack: "dev", ref: "steal", succeeded: true, changes, objects, durationMs: 1 };
    assert.deepEqual(
      objects.map((o) => [o.object, o.fields.map((f) => `${f.path} ${String(f.old)} ${String(f.new)}`)]),
      [
        ["ConfigMap/team-b/loot", [`data.encoded undefined ${MASK}`, `data.stolen ${MASK} ${MASK}`]],
        ["Secret/team-b/db", [`data.password ${MASK} ${MASK}`]],
      ],
    );
    assertClean("JSON", JSON.stringify(report));
    assertClean("Markdown", renderPreviewMarkdown(report));
    assertClean("text", renderPreviewText(report));
  });

  it("masks the values in the pipeline's result: the plan, a refusal's message and the object names", async () => {
    const ports = (plan: () => Promise<EngineStep[]>): Ports => ({
      source: {
        head: () => Promise.resolve("a".repeat(40)),
        checkout: () =>
          Promise.resolve({
            sha: "a".repeat(40),
            ref: "steal",
            author: "m",
            authorEmail: "",
            committer: "m",
            committerEmail: "",
            date: "",
            subject: "steal",
          }),
        changedPaths: () => Promise.resolve([]),
      },
      renderer: { build: () => Promise.resolve(state) },
      cluster: {
        serves: () => Promise.resolve(true),
        uid: () => Promise.resolve("cluster-uid"),
        observe: () => Promise.resolve({ seen: new Map(), unlisted: [] }),
        hasNamespace: () => Promise.resolve(true),
        dryRun: () => Promise.resolve(undefined),
        read: () => Promise.resolve({}),
        runHooks: () => Promise.resolve(undefined),
      },
      engine: {
        open: () => Promise.resolve({ objects: [], pendingCreates: 0 }),
        resolvePendingCreates: () => Promise.resolve({ objects: [], pendingCreates: 0 }),
        plan,
        apply: () => Promise.reject(new Error("no apply in a preview")),
        history: () => Promise.resolve([]),
        urnOf: (id) => objectUrn("dev", id),
      },
      lock: { acquire: () => Promise.resolve(() => Promise.resolve()) },
    });
    const options = defaultPipelineOptions({ stack: "dev", path: "c" });
    const ok = await reconcile(
      { kind: "preview", ref: "steal" },
      ports(() => Promise.resolve(planned)),
      options,
    );
    assert.equal(ok.succeeded, true);
    assertClean("the plan", JSON.stringify(ok));

    const refusal = `ConfigMap "loot" is invalid: metadata.labels: Invalid value: "${Buffer.from(STOLEN).toString("hex")}"`;
    const failed = await reconcile(
      { kind: "preview", ref: "steal" },
      ports(() => Promise.reject(new EngineError(`preview failed: ${STOLEN} ${refusal}`, [{ urn: urn(lootId), message: refusal }], false))),
      options,
    );
    assert.equal(failed.reason, "DryRunFailed");
    assert.match(failed.message!, /ConfigMap\/team-b\/loot: the API server rejects it/);
    assertClean("the refusal", failed.message!);
    assert.ok(!failed.message!.includes(Buffer.from(STOLEN).toString("hex")), failed.message);

    const other = await reconcile(
      { kind: "preview", ref: "steal" },
      ports(() => Promise.reject(new EngineError(`preview failed: ${STOLEN}`, [], false))),
      options,
    );
    assert.equal(other.reason, "ApplyFailed");
    assert.equal(other.message, `preview failed: ${MASK}`);
  });
});
