/**
 * A `fetch` for Node built on `node:http(s)` with real backpressure. Node 20's built-in fetch
 * reads a streamed request body far ahead of the socket (a 20 MiB upload held ~20 MiB in
 * memory, measured), so the CLI and the tests hand this one to `VaultClient` for files.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';

export async function streamingFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const headers: Record<string, string> = {};
  new Headers(init.headers).forEach((v, k) => (headers[k] = v));
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const req = send(url, { method: init.method ?? 'GET', headers });
  const answered = new Promise<Response>((resolve, reject) => {
    req.on('response', (res) => {
      const h = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h.set(k, Array.isArray(v) ? v.join(', ') : v);
      const status = res.statusCode ?? 500;
      // Pulled one chunk at a time, only when the reader asks (Node 20's Readable.toWeb reads ahead).
      const chunks = res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      const body =
        status === 204 || status === 304
          ? null
          : new ReadableStream<Uint8Array>(
              {
                async pull(controller) {
                  const next = await chunks.next();
                  if (next.done === true) controller.close();
                  else controller.enqueue(new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength));
                },
                cancel() {
                  res.destroy();
                },
              },
              { highWaterMark: 0 },
            );
      resolve(new Response(body, { status, headers: h }));
    });
    req.on('error', reject);
  });
  // The answer may fail while the body is still going out: the caller hears it once, from here.
  answered.catch(() => undefined);
  const body = init.body;
  if (body === undefined || body === null) req.end();
  else if (typeof body === 'string' || body instanceof Uint8Array) req.end(body);
  else if (body instanceof ReadableStream) await pipeline(Readable.fromWeb(body as unknown as NodeWebStream<Uint8Array>), req);
  else {
    req.destroy();
    throw new TypeError('streamingFetch sends strings, bytes and streams.');
  }
  return answered;
}
