import * as path from "node:path";
import { Command, Option } from "commander";
import { COMPONENTS } from "../../toolchain/components";
import { defaultToolchainOptions, ensureToolchain } from "../../toolchain/install";

/** `ferry toolchain`: the pinned Pulumi CLI, provider and control-plane binaries. */
export function toolchainCommand(): Command {
  const cmd = new Command("toolchain").description(
    "Manage the pinned binaries ferry runs (Pulumi, the Kubernetes provider, a local control plane)",
  );
  cmd
    .command("install")
    .description(
      "Provide every pinned binary: from the cache, from PATH when the version matches, or built with `go build` (cache: $FERRY_TOOLCHAIN_DIR)",
    )
    .option("--only <names...>", `only these components (${COMPONENTS.map((c) => c.name).join(", ")})`)
    .addOption(new Option("-o, --output <format>", "output format").choices(["text", "json"]).default("text"))
    .action(async (opts: { only?: string[]; output: string }) => {
      const unknown = (opts.only ?? []).filter((n) => !COMPONENTS.some((c) => c.name === n));
      if (unknown.length) throw new Error(`unknown component(s): ${unknown.join(", ")}`);
      const options = defaultToolchainOptions({ only: opts.only });
      const toolchain = await ensureToolchain(options);
      const wanted = COMPONENTS.filter((c) => !opts.only || opts.only.includes(c.name));
      const rows = wanted.flatMap((c) =>
        c.binaries.map((b) => ({
          component: c.name,
          version: c.version,
          binary: b.name,
          path: toolchain.bin(b.name),
          source: toolchain.sources[c.name],
        })),
      );
      if (opts.output === "json")
        process.stdout.write(JSON.stringify({ dir: options.dir, pulumiRoot: toolchain.pulumiRoot, binaries: rows }, null, 2) + "\n");
      else for (const r of rows) process.stdout.write(`${r.binary.padEnd(28)} ${r.version.padEnd(8)} ${r.source?.padEnd(6)} ${r.path}\n`);
    });
  cmd
    .command("path")
    .description("Print the folder holding pulumi, its Node.js language host and the Kubernetes provider (for PATH)")
    .action(async () => {
      const toolchain = await ensureToolchain(defaultToolchainOptions({ only: ["pulumi", "pulumi-resource-kubernetes"] }));
      process.stdout.write(`${path.join(toolchain.pulumiRoot, "bin")}\n`);
    });
  return cmd;
}
