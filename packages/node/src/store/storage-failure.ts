/**
 * Whether `e` is the storage failing under the node (disk full, I/O error, a read-only or vanished
 * file) rather than a fault in the data. The node cannot go on, but each block commits atomically
 * with its stream position, so a restart once storage is back resumes from the last committed block.
 */
export function isStorageFailure(e: unknown): boolean {
  const code = typeof e === 'object' && e !== null ? (e as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^(SQLITE_(FULL|IOERR|CANTOPEN|READONLY|NOMEM)|ENOSPC|EIO|EROFS|EDQUOT)/.test(code);
}
