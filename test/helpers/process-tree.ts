// The process tree helpers live in src/lib (the process watchdog uses them too).
export { procStatFields, processTree } from "../../src/lib/process-tree";
