import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Listen on a random port of `host`; resolves to `http://host:port`. */
export function listenOn(server: Server, host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`));
  });
}

/** Close the server and drop its open connections, so nothing keeps the test process alive. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
