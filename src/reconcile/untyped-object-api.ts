import * as k8s from "@kubernetes/client-node";

/**
 * client-node's object API serializes a body through its typed models, which drops every field
 * spelled otherwise than the model's property (`x-kubernetes-preserve-unknown-fields`, `$ref` in a
 * CRD's schema) or newer than the client: a dry run of cert-manager's CRDs was refused for a schema
 * the API server accepts. This one sends the object exactly as the desired state holds it.
 */
export class UntypedObjectApi extends k8s.KubernetesObjectApi {
  /** A server-side apply of `object` in a dry run (`dryRun=All`, forced, as the update applies). */
  async applyDryRun(object: k8s.KubernetesObject, fieldManager: string): Promise<void> {
    const request = this.configuration.baseServer.makeRequestContext(await this.specUriPath(object, "patch"), k8s.HttpMethod.PATCH);
    request.setHeaderParam("Accept", "application/json, */*;q=0.8");
    request.setHeaderParam("Content-Type", k8s.PatchStrategy.ServerSideApply);
    request.setQueryParam("dryRun", "All");
    request.setQueryParam("fieldManager", fieldManager);
    request.setQueryParam("force", "true");
    request.setBody(JSON.stringify(object));
    await this.requestPromise(request);
  }
}
