import * as sshpk from "sshpk";

/** An SSH key pair for a git host's deploy key: the private half stays in a Secret, the public half is shown. */
export interface DeployKey {
  /** OpenSSH private key (`-----BEGIN OPENSSH PRIVATE KEY-----`); never print or log it. */
  readonly privateKey: string;
  /** One line, `ssh-ed25519 AAAA... <comment>`, to paste into the git host. */
  readonly publicKey: string;
}

/** Generates a new ed25519 deploy key whose public half carries `comment`. */
export function generateDeployKey(comment: string): DeployKey {
  const key = sshpk.generatePrivateKey("ed25519");
  key.comment = comment;
  return { privateKey: key.toString("ssh-private"), publicKey: publicKeyLine(key) };
}

/** The public key line of an OpenSSH private key (as a Secret's `identity` holds it); the error never quotes the key. */
export function publicKeyOf(privateKey: string, comment?: string): string {
  let key: sshpk.PrivateKey;
  try {
    key = sshpk.parsePrivateKey(privateKey, "auto");
  } catch (err) {
    throw new Error("the deploy key Secret's `identity` is not an SSH private key: delete the Secret to have a new key made", {
      cause: err instanceof Error ? new Error(err.name) : undefined,
    });
  }
  if (comment !== undefined) key.comment = comment;
  return publicKeyLine(key);
}

function publicKeyLine(key: sshpk.PrivateKey): string {
  return key.toPublic().toString("ssh").trim();
}
