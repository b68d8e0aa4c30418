import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { CausewayError } from '@causeway/core';

/**
 * One process per PGlite directory: two processes opening the same data directory corrupt it
 * (PGlite has no cross-process lock of its own). The lock is a file beside the directory holding
 * the owner's pid; a lock whose pid is no longer alive is taken over.
 */
export class DirectoryLockedError extends CausewayError {
  readonly lockFile: string;
  readonly ownerPid: number;
  constructor(lockFile: string, ownerPid: number) {
    super('DIRECTORY_LOCKED', `the embedded database is in use by process ${ownerPid} (lock file ${lockFile}); one process per directory`);
    this.lockFile = lockFile;
    this.ownerPid = ownerPid;
  }
}

export interface DirectoryLock {
  release(): void;
}

export function acquireDirectoryLock(lockFile: string): DirectoryLock {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      let released = false;
      const onExit = (): void => release();
      const release = (): void => {
        if (released) return;
        released = true;
        process.off('exit', onExit);
        try {
          if (readFileSync(lockFile, 'utf8') === String(process.pid)) unlinkSync(lockFile);
        } catch {
          // already gone
        }
      };
      process.on('exit', onExit);
      return { release };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number.parseInt(readFileSafe(lockFile), 10);
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) throw new DirectoryLockedError(lockFile, owner);
      // Stale: its owner died without releasing. Remove and try again; 'wx' lets only one taker win.
      try {
        unlinkSync(lockFile);
      } catch {
        // another process removed it first
      }
    }
  }
  throw new DirectoryLockedError(lockFile, Number.parseInt(readFileSafe(lockFile), 10) || -1);
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
