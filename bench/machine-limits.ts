/** Ceilings of this machine measured in the same run as a benchmark: Ed25519 verification. */
import { generateKeyPairSync, sign as nodeSign, verify as nodeVerify } from 'node:crypto';

/** Ed25519 verifications per second with node:crypto on the thread pool (both cores). */
export async function verifyCeiling(n = 20_000): Promise<number> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const msg = Buffer.alloc(48, 7);
  const sig = nodeSign(null, msg, privateKey);
  const t0 = performance.now();
  for (let i = 0; i < n; i += 512) {
    await Promise.all(
      Array.from(
        { length: Math.min(512, n - i) },
        () => new Promise<boolean>((res, rej) => nodeVerify(null, msg, publicKey, sig, (e, ok) => (e ? rej(e) : res(ok)))),
      ),
    );
  }
  return n / ((performance.now() - t0) / 1000);
}
