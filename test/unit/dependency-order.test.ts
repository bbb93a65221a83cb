import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { orderByDependsOn } from "../../src/desired-state/dependency-order";

interface Unit {
  name: string;
  namespace: string;
  dependsOn: { name: string; namespace: string }[];
}

const unit = (name: string, ...deps: string[]): Unit => ({
  name,
  namespace: "apps",
  dependsOn: deps.map((d) => (d.includes("/") ? { namespace: d.split("/")[0]!, name: d.split("/")[1]! } : { namespace: "apps", name: d })),
});
const names = (units: readonly Unit[]): string[] => units.map((u) => u.name);

describe("orderByDependsOn", () => {
  it("puts every item after what it dependsOn, keeping the input order otherwise", () => {
    assert.deepEqual(names(orderByDependsOn([unit("web", "db"), unit("db"), unit("cache"), unit("api", "web", "cache")], "HelmRelease")), [
      "db",
      "web",
      "cache",
      "api",
    ]);
    assert.deepEqual(names(orderByDependsOn([unit("c"), unit("b"), unit("a")], "HelmRelease")), ["c", "b", "a"]);
    assert.deepEqual(orderByDependsOn([], "HelmRelease"), []);
  });

  it("follows dependencies across namespaces", () => {
    const certManager = { name: "cert-manager", namespace: "infra", dependsOn: [] };
    const ordered = orderByDependsOn([unit("ingress", "infra/cert-manager"), certManager], "Kustomization");
    assert.deepEqual(names(ordered), ["cert-manager", "ingress"]);
  });

  it("refuses a dependency that is not in the repository", () => {
    assert.throws(
      () => orderByDependsOn([unit("web", "db")], "HelmRelease"),
      (err: unknown) =>
        err instanceof Error &&
        err.message.startsWith("HelmRelease/apps/web dependsOn HelmRelease/apps/db, which is not in the repository\n  fix: "),
    );
  });

  it("refuses a cycle, naming its members in order and nothing else", () => {
    const items = [unit("free"), unit("waiting", "a"), unit("a", "b"), unit("b", "c"), unit("c", "a")];
    assert.throws(() => orderByDependsOn(items, "Kustomization"), {
      message:
        /^Kustomization dependsOn cycle: Kustomization\/apps\/a -> Kustomization\/apps\/b -> Kustomization\/apps\/c -> Kustomization\/apps\/a\n {2}fix: /,
    });
    assert.throws(
      () => orderByDependsOn([unit("self", "self")], "HelmRelease"),
      /cycle: HelmRelease\/apps\/self -> HelmRelease\/apps\/self/,
    );
  });

  it("refuses an item defined twice", () => {
    assert.throws(() => orderByDependsOn([unit("a"), unit("a")], "HelmRelease"), /HelmRelease\/apps\/a is defined twice/);
  });
});
