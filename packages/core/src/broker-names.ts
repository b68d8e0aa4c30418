import { InvalidOptionsError } from './errors.js';

/**
 * Topic and group names end up as NATS subjects, RabbitMQ exchange and queue names, Redis keys
 * and Kafka topics. The grammar admits none of the wildcard or separator characters those brokers
 * give meaning to (`*`, `>`, `#`, spaces, empty segments), so no name can widen a subscription.
 * Dots separate segments of a topic, as every broker reads them; a group is a single segment.
 */
export const TOPIC_RULE =
  'topic must be segments of letters, digits, "_" or "-" joined by single dots (no "*", ">", "#", spaces or empty segments), at most 128 characters';
export const GROUP_RULE = 'group must be 1-64 letters, digits, "_" or "-" (no dots or wildcards)';

const TOPIC = /^[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*$/;
const GROUP = /^[A-Za-z0-9_-]{1,64}$/;

export function topicProblem(topic: unknown): string | null {
  if (typeof topic !== 'string' || topic.length === 0) return 'topic is missing';
  if (topic.length > 128 || !TOPIC.test(topic)) return `${TOPIC_RULE}; got ${JSON.stringify(topic.slice(0, 140))}`;
  return null;
}

export function groupProblem(group: unknown): string | null {
  if (typeof group !== 'string' || group.length === 0) return 'group is missing';
  if (!GROUP.test(group)) return `${GROUP_RULE}; got ${JSON.stringify(group.slice(0, 80))}`;
  return null;
}

export function validateTopic(topic: string): void {
  const problem = topicProblem(topic);
  if (problem !== null) throw new InvalidOptionsError(problem);
}

export function validateGroup(group: string): void {
  const problem = groupProblem(group);
  if (problem !== null) throw new InvalidOptionsError(problem);
}
