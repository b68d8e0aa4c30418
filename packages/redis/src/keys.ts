import { randomBytes } from 'node:crypto';
import { InvalidOptionsError } from '@causeway/core';

/**
 * Key names. Topics and groups follow core's name rules, which admit no ":", and the prefix may
 * not hold one either, so `<prefix>:<topic>` and `<prefix>:<topic>:delayed:<group>` can never
 * name the same key for two different (prefix, topic, group) triples.
 */
const PREFIX = /^[A-Za-z0-9_.-]{1,64}$/;
export const PREFIX_RULE = 'prefix must be 1-64 letters, digits, "_", "-" or "." (no ":")';

export function validatePrefix(prefix: string): void {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new InvalidOptionsError(`${PREFIX_RULE}; got ${JSON.stringify(String(prefix).slice(0, 80))}`);
  }
}

/** The stream that holds a topic's messages. */
export function streamKey(prefix: string, topic: string): string {
  return `${prefix}:${topic}`;
}

/** A group's delayed nacks: a sorted set of entry ids scored by the (server) time they come due. */
export function delayKey(prefix: string, topic: string, group: string): string {
  return `${prefix}:${topic}:delayed:${group}`;
}

/** A consumer name no other subscription uses: each subscription owns its own pending entries. */
export function consumerName(group: string): string {
  return `${group}-${randomBytes(6).toString('hex')}`;
}
