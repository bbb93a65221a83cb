import * as k8s from "@kubernetes/client-node";
import { Logger } from "../lib/log";
export interface StackLeasesOptions {
  readonly kubeConfig: k8s.KubeConfig;
  readonly namespace: string;
  readonly identity: string;
  readonly leaseDurationMs: number;
  readonly renewIntervalMs?: number;
  stacks(): readonly string[];
  onAcquired(stack: string): void;
  onLost(stack: string): Promise<void>;
  readonly log: Logger;
}
export class StackLeases {
  private readonly mine = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly o: StackLeasesOptions) {}
  async start(): Promise<void> {
    this.tick();
    this.timer = setInterval(() => this.tick(), 1000);
  }
  private tick(): void {
    for (const s of this.o.stacks())
      if (!this.mine.has(s)) {
        this.mine.add(s);
        this.o.onAcquired(s);
      }
  }
  async stop(): Promise<void> {
    clearInterval(this.timer);
    for (const s of this.mine) await this.o.onLost(s);
  }
  owned(): ReadonlySet<string> {
    return this.mine;
  }
  replicas(): readonly string[] {
    return [this.o.identity];
  }
}
