// One agent replica's StackLeases as a process of its own, for test/e2e/stack-leases.test.ts.
// Usage: node lease-member.js <kubeconfig> <namespace> <identity> <leaseDurationMs> <stack,stack,...>
// Prints JSON lines on stdout: {"event":"ready"|"acquired"|"lost"|"stopped","identity":..,"stack":..,"at":<epoch ms>}.
// "lost" is printed when its (simulated) worker has stopped, i.e. at the end of the stack's exclusive interval.
import * as k8s from "@kubernetes/client-node";
import { StackLeases } from "../../src/agent/stack-leases";
import { createLogger } from "../../src/lib/log";

/** The events a lease member prints, one JSON object a line. */
export interface MemberEvent {
  readonly event: "ready" | "acquired" | "lost" | "stopped";
  readonly identity: string;
  readonly stack?: string;
  readonly at: number;
}

async function main(): Promise<void> {
  const [kubeconfig, namespace, identity, duration, stackList] = process.argv.slice(2);
  if (!kubeconfig || !namespace || !identity || !duration || stackList === undefined)
    throw new Error("usage: lease-member <kubeconfig> <namespace> <identity> <leaseDurationMs> <stack,stack,...>");
  const print = (e: Omit<MemberEvent, "identity" | "at">) =>
    process.stdout.write(`${JSON.stringify({ ...e, identity, at: Date.now() })}\n`);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const stacks = stackList.split(",").filter((s) => s !== "");
  const leases = new StackLeases({
    kubeConfig: kc,
    namespace,
    identity,
    leaseDurationMs: Number(duration),
    stacks: () => stacks,
    onAcquired: (stack) => print({ event: "acquired", stack }),
    onLost: async (stack) => {
      // A worker that needs a moment to end its run: the lease must stay ours meanwhile.
      await new Promise((r) => setTimeout(r, 300));
      print({ event: "lost", stack });
    },
    log: createLogger({ identity }),
  });
  await leases.start();
  print({ event: "ready" });
  process.once("SIGTERM", () => {
    void leases.stop().then(() => {
      print({ event: "stopped" });
      process.exit(0);
    });
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
