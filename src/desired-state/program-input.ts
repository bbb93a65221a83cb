import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { DesiredState } from "./desired-state";
import { KubeObject, ObjectId } from "./object-id";

/**
 * An object the stack's state holds that no unit of this run declares while some unit failed: the
 * program registers it as it was last applied and changes nothing of it (a failed unit's objects
 * stay as they were; nothing is deleted while a unit fails).
 */
export interface KeptObject {
  readonly id: ObjectId;
  /** The object as the state recorded it (secret values decrypted: the input file is encrypted). */
  readonly object: KubeObject;
  /** It held secret values: they stay secret in the state. */
  readonly sensitive: boolean;
  /** The URN of its state entry when it is not the one its identity gives (an earlier ferry's). */
  readonly urn?: string;
}

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
  /** State entries no unit declares while some unit failed: registered unchanged. */
  readonly keep?: readonly KeptObject[];
}

/** The environment variable that hands the program the key of its input file; the key is never written to disk. */
export const PROGRAM_INPUT_KEY_ENV = "FERRY_PROGRAM_INPUT_KEY";

/** The envelope of an encrypted program input (AES-256-GCM). */
interface SealedInput {
  readonly ferryProgramInput: 1;
  readonly alg: "aes-256-gcm";
  readonly iv: string;
  readonly tag: string;
  readonly data: string;
}

/** A fresh random key for {@link serializeProgramInput} (32 bytes, base64): one per run. */
export function newProgramInputKey(): string {
  return randomBytes(32).toString("base64");
}

/**
 * Serialises a program input encrypted with AES-256-GCM under `key` ({@link newProgramInputKey}):
 * the input holds Secret data, and a run killed before it removes the file must leave no plaintext.
 */
export function serializeProgramInput(input: ProgramInput, key: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", keyBytes(key), iv);
  const data = Buffer.concat([cipher.update(JSON.stringify(input), "utf8"), cipher.final()]);
  const sealed: SealedInput = {
    ferryProgramInput: 1,
    alg: "aes-256-gcm",
    iv: iv.toString("base64"),
    tag: cipher.getAuthTag().toString("base64"),
    data: data.toString("base64"),
  };
  return JSON.stringify(sealed);
}

/** Reads what {@link serializeProgramInput} wrote; throws when the key is missing or wrong, or the file was altered. */
export function deserializeProgramInput(text: string, key: string | undefined): ProgramInput {
  const sealed = JSON.parse(text) as Partial<SealedInput>;
  if (sealed.ferryProgramInput !== 1 || sealed.alg !== "aes-256-gcm" || !sealed.iv || !sealed.tag || !sealed.data) {
    throw new Error("the program input is not an encrypted ferry program input: run the stack through ferry (ferry sync)");
  }
  if (!key)
    throw new Error(`the program input is encrypted and ${PROGRAM_INPUT_KEY_ENV} is not set: run the stack through ferry (ferry sync)`);
  const decipher = createDecipheriv("aes-256-gcm", keyBytes(key), Buffer.from(sealed.iv, "base64"));
  decipher.setAuthTag(Buffer.from(sealed.tag, "base64"));
  let plain: string;
  try {
    plain = Buffer.concat([decipher.update(Buffer.from(sealed.data, "base64")), decipher.final()]).toString("utf8");
  } catch (err) {
    throw new Error("the program input does not decrypt with this run's key: it was altered or written by another run", { cause: err });
  }
  return JSON.parse(plain) as ProgramInput;
}

function keyBytes(key: string): Buffer {
  const bytes = Buffer.from(key, "base64");
  if (bytes.length !== 32) throw new Error(`${PROGRAM_INPUT_KEY_ENV} is not a 32-byte base64 key`);
  return bytes;
}
