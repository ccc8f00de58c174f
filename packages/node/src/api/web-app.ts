/**
 * Serves the browser app (packages/web, built by Vite) from the node, on the same origin as the
 * API and the vault, so the app's signed vault requests name this node's authority. Files come
 * from the build directory; a GET of one of the app's pages answers index.html (the app routes in
 * the browser). Without a build, `/` says how to make one and the API still runs.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';

/** Where `npm run build` puts the app, relative to this file in the repository. */
export const DEFAULT_WEB_DIST = join(import.meta.dirname, '../../../web/dist');

/**
 * The app's own pages (packages/web/src/app.tsx routes them in the browser): only these answer
 * index.html. Any other unknown path, and everything under /api, /vault and /fhir, keeps its
 * coded 404 (an OperationOutcome under /fhir).
 */
const APP_PAGES = /^\/(sign-in|patient|institution|network)(\/[^.]*)?$/;

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>medledger</title></head>
<body><h1>medledger</h1><p>The web app is not built. Run <code>npm install</code> (it builds the app) or
<code>npm run build</code>, then restart the node. The API answers under <a href="/api/health">/api</a>.</p></body></html>`;

export interface WebApp {
  /** whether a built app is served */
  built: boolean;
  /** answers a GET that no route took: index.html for an app path, or false to fall through */
  fallback(req: FastifyRequest, reply: FastifyReply): FastifyReply | false;
}

export async function registerWebApp(app: FastifyInstance, distDir: string): Promise<WebApp> {
  const built = existsSync(join(distDir, 'index.html'));
  if (built) {
    // The hashed assets may be cached for good; index.html must be fetched fresh after a rebuild.
    await app.register(fastifyStatic, {
      root: distDir,
      prefix: '/',
      index: ['index.html'],
      cacheControl: false,
      // One route per built file rather than a wildcard: a wildcard would take every unknown GET,
      // including /fhir's, away from the not-found handler of its own scope.
      wildcard: false,
      setHeaders: (reply, path) => {
        void reply.header('cache-control', path.includes('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  } else {
    app.get('/', { schema: { hide: true } }, (_req, reply) => reply.type('text/html; charset=utf-8').send(NOT_BUILT));
  }
  return {
    built,
    fallback(req, reply) {
      const path = req.url.split('?')[0] ?? '/';
      if (!built || (req.method !== 'GET' && req.method !== 'HEAD') || !APP_PAGES.test(path)) return false;
      return reply.header('cache-control', 'no-cache').sendFile('index.html');
    },
  };
}
