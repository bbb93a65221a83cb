import { generateKeyPairSync, randomBytes } from "node:crypto";

/** Key material of a local control plane: the service-account signing key and the admin token. */
export interface ClusterSecrets {
  readonly serviceAccountKey: string;
  readonly serviceAccountPub: string;
  readonly adminToken: string;
}

/** Generates a fresh RSA service-account key pair and a random admin bearer token. */
export function generateClusterSecrets(): ClusterSecrets {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", {
    modulusLength: 2048,
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
    publicKeyEncoding: { type: "spki", format: "pem" },
  });
  return { serviceAccountKey: privateKey, serviceAccountPub: publicKey, adminToken: randomBytes(24).toString("hex") };
}
