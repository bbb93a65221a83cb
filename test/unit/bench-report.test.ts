import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { classifyTree } from "../../bench/proc";
import { isAvailable } from "../../bench/probe";
import { Figure, ratio, renderMemory, renderTable, targetMet } from "../../bench/report";

const figure = (f: Partial<Figure>): Figure => ({ objects: 1000, measure: "x (s)", ferry: 1, kubectl: 1, target: { kind: "none" }, ...f });

describe("bench report", () => {
  it("judges a ratio target against kubectl's figure of the same run", () => {
    const f = figure({ ferry: 6, kubectl: 2.5, target: { kind: "ratio", max: 3 } });
    assert.equal(ratio(f), 2.4);
    assert.equal(targetMet(f), "yes");
    assert.equal(targetMet({ ...f, ferry: 65 }), "no");
  });

  it("judges an absolute target on ferry's figure alone", () => {
    assert.equal(targetMet(figure({ ferry: 2.9, kubectl: 0.8, target: { kind: "absolute", max: 3, unit: "s" } })), "yes");
    assert.equal(targetMet(figure({ ferry: 1700, kubectl: "n/a", target: { kind: "absolute", max: 512, unit: "MiB" } })), "no");
  });

  it("counts a timeout as a missed target and prints it instead of a number", () => {
    const f = figure({ ferry: "timeout", kubectl: 2.2, target: { kind: "ratio", max: 2 } });
    assert.equal(ratio(f), undefined);
    assert.equal(targetMet(f), "no");
    assert.equal(targetMet(figure({ ferry: "failed", target: { kind: "ratio", max: 2 } })), "-");
    const row = renderTable([f]).split("\n")[2];
    assert.equal(row, "| 1000 | x (s) | timeout | 2.20 | - | ≤ 2× kubectl | no |");
  });

  it("renders one row per figure with the ratio, the target and whether it is met", () => {
    const table = renderTable([
      figure({ measure: "1. initial apply (s)", ferry: 240, kubectl: 8, target: { kind: "ratio", max: 3 }, note: "start run" }),
      figure({ measure: "3. full refresh (s)", ferry: 60, kubectl: 2, target: { kind: "none" } }),
    ]).split("\n");
    assert.equal(table.length, 4);
    assert.equal(table[2], "| 1000 | 1. initial apply (s) (start run) | 240 | 8 | 30.0× | ≤ 3× kubectl | no |");
    assert.equal(table[3], "| 1000 | 3. full refresh (s) | 60 | 2 | 30.0× | - | - |");
  });

  it("breaks memory down by role with the total at the tree's peak", () => {
    const text = renderMemory(
      50,
      {
        "initial apply": {
          peakMiB: 300.4,
          atPeak: { runner: 100, provider: 200.4 },
          rolePeaks: { runner: 120, provider: 210 },
          samples: 5,
          processesAtPeak: [],
        },
        other: undefined,
      },
      ["runner", "provider"],
    );
    assert.match(text, /\| runner \| 100 \(peak 120\) \| - \|/);
    assert.match(text, /\| \*\*total\*\* \| \*\*300\*\* \| - \|/);
  });
});

describe("bench process roles", () => {
  it("names the runner, the pulumi CLI, the language host with its program, the provider and the rest", () => {
    const roles = classifyTree(
      [
        { pid: 1, ppid: 0, name: "node" },
        { pid: 10, ppid: 1, name: "pulumi" },
        { pid: 11, ppid: 10, name: "pulumi-language-nodejs" },
        { pid: 12, ppid: 11, name: "node" },
        { pid: 13, ppid: 10, name: "pulumi-resource-kubernetes" },
        { pid: 14, ppid: 1, name: "git" },
        { pid: 99, ppid: 0, name: "pulumi" },
      ],
      1,
    );
    assert.deepEqual(Object.fromEntries(roles), {
      1: "runner",
      10: "pulumi CLI",
      11: "language host + program",
      12: "language host + program",
      13: "provider",
      14: "other",
    });
  });
});

describe("bench probe", () => {
  it("calls a Deployment healed only once it is Available", () => {
    assert.equal(isAvailable(undefined), false);
    assert.equal(isAvailable({ status: { conditions: [{ type: "Progressing", status: "True" }] } }), false);
    assert.equal(isAvailable({ status: { conditions: [{ type: "Available", status: "False" }] } }), false);
    assert.equal(isAvailable({ status: { conditions: [{ type: "Available", status: "True" }] } }), true);
  });
});
