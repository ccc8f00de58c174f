/**
 * Starts a throw-away PostgreSQL server for tests: `initdb` into a fresh temp dir, `postgres` on a
 * free loopback port with its own socket dir, stopped by its own pid. Nothing is mocked. The
 * Debian `postgresql` package provides the binaries (.ci/run installs it).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import pg from 'pg';
import { freePort, tempDir } from './test-network.ts';

const USER = 'medledger';
const DATABASE = 'medledger';

/** The directory holding `initdb` and `postgres`: pg_config's, else the newest Debian one, else PATH's. */
export function postgresBinDir(): string | undefined {
  const candidates: string[] = [];
  const config = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (config.status === 0) candidates.push(config.stdout.trim());
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian).sort((a, b) => Number(b) - Number(a) || b.localeCompare(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  candidates.push(...(process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== ''));
  return candidates.find((d) => existsSync(join(d, 'postgres')) && existsSync(join(d, 'initdb')));
}

/**
 * PostgreSQL refuses to run as root. As root (here and in CI) the server runs as Debian's
 * `postgres` user: spawned with that uid/gid directly rather than through `runuser`, which stays
 * in between as the parent and turns a SIGINT into SIGTERM and, 2 s later, SIGKILL.
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) {
    throw new Error('Running the tests as root needs the postgres user that `apt-get install postgresql` creates.');
  }
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export class PostgresServer {
  private constructor(
    private readonly dir: string,
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly killOnExit: () => void,
  ) {}

  /** The server's own database, as user `medledger` (trust authentication on loopback). */
  get connectionString(): string {
    return this.urlOf(DATABASE);
  }

  static async start(): Promise<PostgresServer> {
    const bin = postgresBinDir();
    if (bin === undefined) {
      throw new Error('PostgreSQL is not installed (apt-get install postgresql): no directory holds both initdb and postgres.');
    }
    const user = serverUser();
    const dir = tempDir('pg');
    const data = join(dir, 'data');
    const log = join(dir, 'postgres.log');
    // The dir holds the data dir, the socket and the log; the server user must own it.
    if (user !== undefined) chownSync(dir, user.uid, user.gid);
    const as = { cwd: dir, ...user };

    // --no-sync only skips syncing initdb's template files; the server itself runs with fsync=on.
    const init = spawnSync(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', USER, '-E', 'UTF8', '--no-locale', '--no-sync'], {
      ...as,
      encoding: 'utf8',
    });
    if (init.status !== 0) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}${init.error?.message ?? ''}`);
    }

    const port = await freePort();
    const logFd = openSync(log, 'a');
    if (user !== undefined) chownSync(log, user.uid, user.gid);
    const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on'];
    const child = spawn(join(bin, 'postgres'), args, { ...as, stdio: ['ignore', logFd, logFd] });
    closeSync(logFd);
    // A test process that dies without stop() must not leave a server behind.
    const killOnExit = (): void => void child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const server = new PostgresServer(dir, port, child, killOnExit);
    try {
      await server.waitReady();
      await server.admin((c) => c.query(`CREATE DATABASE ${DATABASE}`));
    } catch (e) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-4000) : '';
      await server.stop();
      throw new Error(`PostgreSQL did not start: ${e instanceof Error ? e.message : String(e)}\n${tail}`, { cause: e });
    }
    return server;
  }

  /** Creates an empty database and returns its connection string. */
  async createDatabase(name: string): Promise<string> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) throw new Error(`not a plain database name: ${name}`);
    await this.admin((c) => c.query(`CREATE DATABASE ${name}`));
    return this.urlOf(name);
  }

  /** Stops the server (SIGINT: a fast shutdown, by its own pid) and removes its directory. */
  async stop(): Promise<void> {
    const c = this.child;
    if (c.exitCode === null && c.signalCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGINT');
      const late = setTimeout(() => c.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(late);
    }
    process.removeListener('exit', this.killOnExit);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private urlOf(database: string): string {
    return `postgresql://${USER}@127.0.0.1:${this.port}/${database}`;
  }

  private async admin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
    const c = new pg.Client({ connectionString: this.urlOf('postgres') });
    await c.connect();
    try {
      return await work(c);
    } finally {
      await c.end();
    }
  }

  private async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`postgres exited (${this.child.exitCode ?? this.child.signalCode})`);
      }
      try {
        await this.admin((c) => c.query('SELECT 1'));
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
