import { createServer, type IncomingHttpHeaders } from 'node:http';
import { connect, type AddressInfo } from 'node:net';

/** ConnectProxy is a forward proxy that records CONNECT requests and refuses them with a fixed status. */
export interface ConnectProxy {
  url: string;
  connects: { target: string; headers: IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/**
 * startConnectProxy listens on 127.0.0.1:0 and answers every CONNECT with the given status (no
 * tunnel is opened), or with `'tunnel'` opens the tunnel to the target like a real forward proxy.
 */
export async function startConnectProxy(status: number | 'tunnel' = 502): Promise<ConnectProxy> {
  const connects: ConnectProxy['connects'] = [];
  const server = createServer((_req, res) => {
    res.writeHead(405);
    res.end();
  });
  server.on('connect', (req, socket, head) => {
    connects.push({ target: req.url ?? '', headers: req.headers });
    if (status === 'tunnel') {
      const [host, port] = (req.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        if (head.length > 0) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
      return;
    }
    socket.end(`HTTP/1.1 ${status} Refused\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
