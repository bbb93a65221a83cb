import { z } from "zod";

/**
 * A stack held at a commit by `ferry rollback`: the runner applies this commit instead of the
 * branch head until the pin is lifted (`ferry resume`, or a new commit when the policy says so).
 * It lives in the stack's state (the program's `pin` output), so every ferry sharing the backend
 * sees it.
 */
export const PinSchema = z.object({
  /** The commit the stack is held at. */
  revision: z.string().regex(/^[0-9a-f]{40}$/),
  /** The commit deployed before the rollback. */
  from: z.string().optional(),
  /** Who rolled back. */
  by: z.string(),
  /** When (ISO 8601). */
  at: z.string(),
  /** resume: until `ferry resume`; new-commit: until the followed branch moves past `head`. */
  policy: z.enum(["resume", "new-commit"]),
  /** The head of the followed branch when the pin was set. */
  head: z.string().optional(),
});

/** A stack's pin (see {@link PinSchema}). */
export type Pin = z.infer<typeof PinSchema>;

/** Reads a pin from the stack's outputs; undefined when there is none or it is not a pin. */
export function parsePin(value: unknown): Pin | undefined {
  const parsed = PinSchema.safeParse(typeof value === "string" ? safeJson(value) : value);
  return parsed.success ? parsed.data : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** What a run applies: the branch, or the pinned commit; and the pin to keep. Pure. */
export function decideRef(input: {
  /** The ref the stack follows (undefined: the default branch). */
  readonly followed?: string;
  /** The pin in the stack's state. */
  readonly pin?: Pin;
  /** The followed branch's head now, when the pin's policy needs it. */
  readonly head?: string;
  /** Lift the pin (`ferry resume`, `ferry sync --unpin`). */
  readonly unpin?: boolean;
}): { ref?: string; pin?: Pin; unpinned?: "resume" | "new-commit" } {
  const { pin } = input;
  if (!pin) return { ref: input.followed };
  if (input.unpin) return { ref: input.followed, unpinned: "resume" };
  if (pin.policy === "new-commit" && input.head && pin.head && input.head !== pin.head) {
    return { ref: input.followed, unpinned: "new-commit" };
  }
  return { ref: pin.revision, pin };
}
