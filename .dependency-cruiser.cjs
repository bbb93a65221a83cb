// The direction of ferry's dependencies (npm run check): load -> render -> reconcile -> agent/cli.
// desired-state uses nothing of ours; render uses desired-state and source; reconcile uses those;
// the agent, the CLI and the presentation layers (preview, github) sit on top. components/ (the
// Pulumi program) maps the desired state and nothing else.
const ours = "^(src|components)/";
const above = (rooms) => `^src/(${rooms.join("|")})/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: "desired-state-is-pure",
      comment: "src/desired-state is the pure model: it depends on nothing else of ferry's.",
      severity: "error",
      from: { path: "^src/desired-state/" },
      to: { path: ours, pathNot: "^src/desired-state/" },
    },
    {
      name: "source-below-render",
      comment: "src/source (git) uses the model and the shared helpers only.",
      severity: "error",
      from: { path: "^src/source/" },
      to: { path: `${above(["render", "reconcile", "agent", "cli", "preview", "github", "devcluster", "toolchain"])}|^components/` },
    },
    {
      name: "render-below-reconcile",
      comment: "src/render uses desired-state, source and lib; never the pipeline or what sits on it.",
      severity: "error",
      from: { path: "^src/render/" },
      to: { path: `${above(["reconcile", "agent", "cli", "preview", "github", "devcluster", "toolchain"])}|^components/` },
    },
    {
      name: "reconcile-below-agent",
      comment: "src/reconcile (the pipeline) never reaches up into the agent, the CLI or the presentation layers.",
      severity: "error",
      from: { path: "^src/reconcile/" },
      to: { path: `${above(["agent", "cli", "preview", "github", "devcluster"])}|^components/` },
    },
    {
      name: "agent-below-cli",
      comment: "src/agent runs on the pipeline; the CLI sits on top of it.",
      severity: "error",
      from: { path: "^src/agent/" },
      to: { path: `${above(["cli", "preview", "github", "devcluster"])}|^components/` },
    },
    {
      name: "presentation-below-cli",
      comment: "src/preview and src/github render results; they never call the CLI or the agent.",
      severity: "error",
      from: { path: "^src/(preview|github)/" },
      to: { path: `${above(["cli", "agent", "devcluster"])}|^components/` },
    },
    {
      name: "lib-is-a-leaf",
      comment: "src/lib holds shared helpers that depend on nothing else of ferry's.",
      severity: "error",
      from: { path: "^src/lib/" },
      to: { path: ours, pathNot: "^src/lib/" },
    },
    {
      name: "components-map-the-model",
      comment: "components/ (the Pulumi program) maps the desired state; it never parses, renders or reconciles.",
      severity: "error",
      from: { path: "^components/" },
      to: { path: "^src/", pathNot: "^src/desired-state/" },
    },
    {
      name: "no-circular",
      comment: "Modules do not import each other in a circle.",
      severity: "error",
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "^(dist|node_modules)/" },
    tsConfig: { fileName: "tsconfig.json" },
    tsPreCompilationDeps: true,
  },
};
