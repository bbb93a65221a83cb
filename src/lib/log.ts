import pino from "pino";

/** ferry's structured logger: JSON lines, or readable text when stderr is a TTY. */
export type Logger = pino.Logger;

/** Creates the process logger. Level from $FERRY_LOG_LEVEL (default info). */
export function createLogger(bindings: Record<string, unknown> = {}): Logger {
  const level = process.env.FERRY_LOG_LEVEL ?? "info";
  const pretty = process.stderr.isTTY && process.env.FERRY_LOG_FORMAT !== "json";
  const destination = pretty ? pino.transport({ target: "pino-pretty", options: { destination: 2, colorize: true } }) : pino.destination(2);
  return pino({ level, base: bindings, redact: ["token", "passphrase", "*.token", "*.passphrase"] }, destination);
}
