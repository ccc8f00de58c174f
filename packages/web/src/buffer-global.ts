/**
 * core's RFC 9421 signing goes through `http-message-signatures`, whose httpbis module reads a
 * global `Buffer` (see core/http/message-signatures.ts); the browser gets the `buffer` package's.
 */
import { Buffer } from 'buffer';

const scope = globalThis as { Buffer?: unknown };
scope.Buffer ??= Buffer;
