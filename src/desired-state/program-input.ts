import { DesiredState } from "./desired-state";

/**
 * What a run hands the Pulumi program (as a file, `ferry:desiredState`): the desired state to
 * register, the state entries to take over under their new URNs, and the outputs to record.
 */
export interface ProgramInput {
  readonly state: DesiredState;
  /**
   * Resource name -> the URN under which the stack's state holds that object today, for objects
   * whose URN is not yet the one their identity gives (a stack made by an earlier ferry).
   */
  readonly adopt: Readonly<Record<string, string>>;
  /** Outputs of the stack (a rollback's pin travels in the state this way). */
  readonly outputs: Readonly<Record<string, unknown>>;
}

/** Serialises a program input. */
export function serializeProgramInput(input: ProgramInput): string {
  return JSON.stringify(input);
}

/** Reads what {@link serializeProgramInput} wrote. */
export function deserializeProgramInput(text: string): ProgramInput {
  return JSON.parse(text) as ProgramInput;
}
