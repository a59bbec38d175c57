"""A TLS server or client on asyncio's memory-BIO TLS (SSLObject).

server CERT KEY: listen on 127.0.0.1, print the port, answer one request.
client PORT: send one request, print the response, exit.
"""
import asyncio
import ssl
import sys


async def serve(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    done = asyncio.Event()

    async def handle(reader, writer):
        req = await reader.readuntil(b"\r\n\r\n")
        body = b"asyncio body\n"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)
    print(srv.sockets[0].getsockname()[1], flush=True)
    await done.wait()
    srv.close()


async def client(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx)
    writer.write(b"GET /asyncio HTTP/1.1\r\nHost: tlstap\r\n\r\n")
    await writer.drain()
    print((await reader.read()).decode(), end="", flush=True)
    writer.close()


if sys.argv[1] == "server":
    asyncio.run(serve(sys.argv[2], sys.argv[3]))
else:
    asyncio.run(client(int(sys.argv[2])))
