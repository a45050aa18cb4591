/**
 * Linux errno values (asm-generic/errno-base.h) used by the KVM ioctls the emulator models, and
 * the filesystem ones the CLI names when an output path cannot be written.
 */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  ENXIO: 6,
  E2BIG: 7,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  EROFS: 30,
  EOPNOTSUPP: 95,
} as const;

export type ErrnoName = keyof typeof Errno;

/**
 * An ioctl failure: carries the errno the real kernel returns for the same input.
 * `param` names the offending argument so that user-facing errors can say which one.
 */
export class KvmError extends Error {
  readonly errno: ErrnoName;
  readonly param: string | undefined;

  constructor(errno: ErrnoName, message: string, param?: string) {
    super(`${errno}: ${message}`);
    this.name = 'KvmError';
    this.errno = errno;
    this.param = param;
  }

  /** Negative value as the raw ioctl would return it. */
  get code(): number {
    return -Errno[this.errno];
  }

  /** The message without the errno prefix. */
  get detail(): string {
    return this.message.slice(this.errno.length + 2);
  }
}

export function isKvmError(e: unknown): e is KvmError {
  return e instanceof KvmError;
}
