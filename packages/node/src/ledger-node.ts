/**
 * One institution node: the ledger store, the orderer, the peer loop and the HTTP API, started
 * and stopped together. `medledger start` and `medledger demo` both run one of these.
 */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Genesis } from '@medledger/core/ledger/genesis';
import { installNodeCrypto } from './crypto/node-crypto.ts';
import { LedgerStore } from './store/ledger-store.ts';
import { SoloOrderer } from './ordering/solo-orderer.ts';
import { Peer } from './peer/peer.ts';
import { createApi } from './api/server.ts';
import { DEFAULT_WEB_DIST } from './api/web-app.ts';
import { DataDirFiles, type NodeConfig } from './config/data-dir.ts';
import { NatsOrderer } from './ordering/nats-orderer.ts';
import { FinalityTracker } from './peer/finality-tracker.ts';
import type { Signer } from '@medledger/core/ledger/tx';
import { openVaults, type VaultService } from './vault/open-vaults.ts';
import type { PushConfig, VaultConfig } from './config/data-dir.ts';
import { keyFilePath, readIdentityFile } from './config/data-dir.ts';
import { Identity } from '@medledger/core/client/identity';
import { PushService } from './push/push-service.ts';
import { PushStore } from './push/push-store.ts';

export interface LedgerNodeOptions {
  dataDir: string;
  /** solo (default): the local log; nats: the consortium's JetStream stream */
  ordering?: NodeConfig['ordering'];
  genesis: Genesis;
  institution: string;
  host: string;
  port: number;
  rateLimitPerMinute?: number;
  logger?: boolean;
  /** this institution's key: a validator signs its finality votes with it */
  signer?: Signer | null;
  /** the vault(s) to keep; their institutions' identity files must be in the data dir */
  vault?: VaultConfig | null;
  /** where this node's identity files are (default: <dataDir>/keys) */
  keysDir?: string;
  /** the built browser app served at `/` (default: packages/web/dist; null: none) */
  webDist?: string | null;
  /** `medledger demo` only: synthetic identity files the app's sign-in may offer */
  demoIdentitiesDir?: string | null;
  /** issue 7: webhook deliveries of subscription notifications */
  push?: PushConfig | null;
  /** the node's clock (block times, signature windows, retries); tests inject one. Default Date.now */
  now?: () => number;
}

export class LedgerNode {
  private app: FastifyInstance | null = null;

  private constructor(
    readonly peer: Peer,
    readonly finality: FinalityTracker | null,
    readonly vault: VaultService | null,
    readonly push: PushService,
    private readonly o: LedgerNodeOptions,
  ) {}

  static async start(o: LedgerNodeOptions): Promise<LedgerNode> {
    installNodeCrypto();
    const store = new LedgerStore(join(o.dataDir, DataDirFiles.chain));
    const cfg = o.genesis.config;
    const ordering = o.ordering ?? { kind: 'solo' };
    const limits = { maxTxPerBlock: cfg.maxTxPerBlock, batchTimeoutMs: cfg.batchTimeoutMs, maxTxBytes: cfg.maxTxBytes };
    const orderer =
      ordering.kind === 'nats'
        ? new NatsOrderer({
            servers: ordering.servers,
            stream: ordering.stream,
            replicas: ordering.replicas,
            ...limits,
            onFatal: (e) => peer.halt(e),
          })
        : new SoloOrderer({ dir: join(o.dataDir, DataDirFiles.orderer), ...limits, ...(o.now ? { now: o.now } : {}) });
    const peer = new Peer(store, orderer, o.genesis);
    // On a consortium, finality votes travel on their own stream beside the ordering stream.
    const finality =
      ordering.kind === 'nats'
        ? new FinalityTracker(peer, {
            servers: ordering.servers,
            stream: `${ordering.stream}_VOTES`,
            replicas: ordering.replicas,
            quorum: cfg.quorum,
            signer: o.signer ?? null,
          })
        : null;
    peer.on('error', (e) => {
      // Safety before liveness: a peer that cannot apply a block stops committing.
      process.stderr.write(`medledger: peer halted: ${e instanceof Error ? e.message : String(e)}\n`);
    });
    await finality?.start();
    await peer.start();
    const vault = o.vault
      ? await openVaults(o.dataDir, o.keysDir ?? join(o.dataDir, DataDirFiles.keys), o.vault, peer, finality, o.now)
      : null;
    // Each webhook is signed with its institution's identity file, kept beside the node's keys.
    const keyOf = (institution: string): Identity =>
      new Identity(
        readIdentityFile(o.keysDir === undefined ? keyFilePath(o.dataDir, institution) : join(o.keysDir, `${institution}.json`)),
      );
    const push = new PushService({
      peer,
      store: new PushStore(join(o.dataDir, DataDirFiles.push)),
      webhooks: (o.push?.webhooks ?? []).map((w) => ({ ...w, identity: keyOf(w.institution) })),
      ...(o.now ? { now: o.now } : {}),
      ...(o.push?.maxAttempts === undefined ? {} : { maxAttempts: o.push.maxAttempts }),
      ...(o.push?.retryBaseMs === undefined ? {} : { retryBaseMs: o.push.retryBaseMs }),
    });
    push.start();
    const node = new LedgerNode(peer, finality, vault, push, o);
    node.app = await createApi(peer, {
      bodyLimit: cfg.maxTxBytes + 64 * 1024,
      rateLimitPerMinute: o.rateLimitPerMinute ?? 60_000,
      institution: o.institution,
      logger: o.logger ?? false,
      finality,
      vault,
      webDist: o.webDist === undefined ? DEFAULT_WEB_DIST : o.webDist,
      demoIdentitiesDir: o.demoIdentitiesDir ?? null,
      push,
    });
    await node.app.listen({ host: o.host, port: o.port });
    // The vault answers signed requests addressed to this node's own address (and to the
    // addresses its institutions publish on the ledger).
    const own = new URL(node.url);
    vault?.allowAuthority(own.host);
    if (own.hostname === 'localhost') for (const h of ['127.0.0.1', '[::1]']) vault?.allowAuthority(`${h}:${own.port}`);
    push.allowAuthority(own.host);
    if (own.hostname === 'localhost') for (const h of ['127.0.0.1', '[::1]']) push.allowAuthority(`${h}:${own.port}`);
    return node;
  }

  get url(): string {
    const addr = this.app?.server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : this.o.port;
    return `http://${this.o.host.includes(':') ? `[${this.o.host}]` : this.o.host}:${port}`;
  }

  get api(): FastifyInstance {
    return this.app!;
  }

  async stop(): Promise<void> {
    await this.app?.close();
    await this.push.stop();
    await this.vault?.stop();
    await this.finality?.stop();
    await this.peer.stop();
    this.peer.store.close();
  }
}
