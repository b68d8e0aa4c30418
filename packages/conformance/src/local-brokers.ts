import { execFile } from 'node:child_process';
import { connect } from 'node:net';

/**
 * Restarts one of the machine's local brokers with the commands in the developers' brief, then
 * waits until it answers. For the restart cases of brokerRestartSuite and for fault tests; these
 * run in the vitest `restart` project, after every other test file, because a restart pulls the
 * server from under anything else using it.
 */
export type LocalBroker = 'postgresql' | 'rabbitmq' | 'nats' | 'redis';

const START: Record<LocalBroker, string> = {
  postgresql: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
  rabbitmq: 'rabbitmq-server -detached',
  nats: 'start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log',
  redis: 'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log',
};

const STOP: Record<LocalBroker, string> = {
  postgresql: 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main stop -m fast',
  rabbitmq: 'rabbitmqctl stop',
  nats: 'start-stop-daemon --stop --oknodo --retry 20 --exec /usr/sbin/nats-server',
  // The local Redis keeps nothing on disk (--save ""); SHUTDOWN SAVE writes one snapshot so a
  // clean restart keeps the streams, as a production Redis with persistence would.
  redis: 'redis-cli -h 127.0.0.1 -p 6379 shutdown save',
};

const READY: Record<LocalBroker, string> = {
  postgresql: 'pg_isready -h 127.0.0.1 -p 5432 -q',
  rabbitmq: 'rabbitmqctl await_startup',
  nats: 'true',
  redis: 'redis-cli -h 127.0.0.1 -p 6379 ping',
};

const PORT: Record<LocalBroker, number> = { postgresql: 5432, rabbitmq: 5672, nats: 4222, redis: 6379 };

export async function stopLocalBroker(broker: LocalBroker): Promise<void> {
  await sh(STOP[broker]);
  await waitUntil(async () => !(await portOpen(PORT[broker])), 60_000, `${broker} to stop`);
}

export async function startLocalBroker(broker: LocalBroker): Promise<void> {
  await sh(START[broker]);
  await waitUntil(() => portOpen(PORT[broker]), 90_000, `${broker} to listen on ${PORT[broker]}`);
  await waitUntil(() => sh(READY[broker]).then(() => true, () => false), 90_000, `${broker} to answer`);
}

export async function restartLocalBroker(broker: LocalBroker): Promise<void> {
  await stopLocalBroker(broker);
  await startLocalBroker(broker);
}

function sh(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', command], { timeout: 120_000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} failed: ${stderr || error.message}`));
      else resolve(stdout);
    });
  });
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
