import { allObjects, DesiredState } from "../desired-state/desired-state";
import { ObjectId } from "../desired-state/object-id";
import { maskLeaves, redactor, Redactor } from "../desired-state/sensitive-values";
import { EngineStep } from "./ports";

/** What a run shows of its desired state's secrets: nothing. */
export interface RunRedaction {
  /** Masks the strings that reveal Secret data in any text or data. */
  readonly redact: Redactor;
  /** The engine's steps as a run may show them (see {@link redactSteps}). */
  steps(steps: readonly EngineStep[]): EngineStep[];
}

/**
 * The redaction of a run: the desired state's sensitive strings (masked wherever they appear) and
 * the URNs of its sensitive objects (whose every field value is masked). Pure.
 */
export function runRedaction(state: DesiredState | undefined, urnOf: (id: ObjectId) => string): RunRedaction {
  const redact = redactor(state?.sensitive);
  const sensitiveUrns = new Set(
    state
      ? allObjects(state)
          .filter((o) => o.sensitive)
          .map((o) => urnOf(o.id))
      : [],
  );
  return { redact, steps: (steps) => redactSteps(steps, sensitiveUrns, redact) };
}

/**
 * Engine steps with nothing secret left: the inputs of sensitive objects keep their shape (so a
 * preview still lists the changed field paths) with every value masked, so do a Secret's `data`
 * and `stringData`, and every sensitive string is masked everywhere (URNs, paths, values). Pure.
 */
export function redactSteps(steps: readonly EngineStep[], sensitiveUrns: ReadonlySet<string>, redact: Redactor): EngineStep[] {
  return steps.map((step) => {
    const mask = sensitiveUrns.has(step.urn)
      ? maskLeaves
      : step.type === SECRET_TYPE
        ? <T>(inputs: T): T => ({ ...inputs, ...maskLeaves(pick(inputs, ["data", "stringData"])) })
        : undefined;
    const masked = mask
      ? {
          ...step,
          ...(step.oldInputs ? { oldInputs: mask(step.oldInputs) } : {}),
          ...(step.newInputs ? { newInputs: mask(step.newInputs) } : {}),
        }
      : step;
    return redact.data(masked);
  });
}

const SECRET_TYPE = "kubernetes:core/v1:Secret";

function pick(o: unknown, keys: readonly string[]): Record<string, unknown> {
  const r = o as Record<string, unknown>;
  return Object.fromEntries(keys.filter((k) => r[k] !== undefined).map((k) => [k, r[k]]));
}
