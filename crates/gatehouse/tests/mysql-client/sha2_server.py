"""A MySQL server that speaks just enough of the protocol to log a client in
with caching_sha2_password, for the gateway's tests.

MariaDB (the MySQL tests' real server) has no caching_sha2_password, and no
server library on PyPI implements its server side, so this stands in: it
follows MySQL 8's protocol for the plugin (HandshakeV10 with a 20-byte
scramble; the fast path, where the client proves it knows the password
against the server's cache, answered 0x01 0x03; the full path, 0x01 0x04,
where the password itself comes over TLS and fills the cache) and answers
COM_QUERY with one text result set, COM_PING with OK, COM_QUIT by closing.
Blocking sockets, read exactly: a client sends its TLS ClientHello right
behind its SSLRequest, which a buffered reader would swallow.
It is not a database: every SELECT returns one row.

    sha2_server.py --port P --cert C --key K [--rsa-public-out F] USER=PASSWORD...

With --rsa-public-out, it makes an RSA key pair and takes the full path's
password without TLS too, encrypted to that key (OAEP with SHA-1, the
password XOR the scramble, as MySQL 8 reads it). Prints "ready" when it
listens, then one line per login: "fast USER", "full USER", "full-rsa
USER", "refused USER why". Needs the `cryptography` package for RSA (in
the venv scripts/setup makes).
"""
import argparse
import hashlib
import os
import socketserver
import ssl
import struct
import sys

PROTOCOL_41 = 1 << 9
SSL_FLAG = 1 << 11
SECURE_CONNECTION = 1 << 15
PLUGIN_AUTH = 1 << 19
PLUGIN_AUTH_LENENC = 1 << 21
CONNECT_WITH_DB = 1 << 3
TRANSACTIONS = 1 << 13
LONG_PASSWORD = 1
PLUGIN = b"caching_sha2_password"
AUTOCOMMIT = 2


def say(line):
    print(line, flush=True)


def lenenc(n):
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def lenenc_str(b):
    return lenenc(len(b)) + b


def read_lenenc(buf, i):
    first = buf[i]
    if first < 251:
        return first, i + 1
    size = {0xFC: 2, 0xFD: 3, 0xFE: 8}[first]
    return int.from_bytes(buf[i + 1 : i + 1 + size], "little"), i + 1 + size


def scramble_ok(password, scramble, reply):
    """The fast path's check, as MySQL's server does it."""
    stage1 = hashlib.sha256(password.encode()).digest()
    stage2 = hashlib.sha256(stage1).digest()
    mix = hashlib.sha256(stage2 + scramble).digest()
    return bytes(a ^ b for a, b in zip(stage1, mix)) == reply


class Conn:
    """One connection, read exactly (nothing read ahead of a TLS handshake)."""

    def __init__(self, sock):
        self.sock, self.seq = sock, 0

    def exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def read(self):
        head = self.exact(4)
        n = int.from_bytes(head[:3], "little")
        self.seq = (head[3] + 1) % 256
        return self.exact(n)

    def write(self, payload):
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([self.seq]) + payload)
        self.seq = (self.seq + 1) % 256


def ok():
    return b"\x00\x00\x00" + struct.pack("<HH", AUTOCOMMIT, 0)


def err(code, state, msg):
    return b"\xff" + struct.pack("<H", code) + b"#" + state + msg.encode()


def column(name):
    out = b"".join(lenenc_str(s) for s in [b"def", b"", b"", b"", name, b""])
    return out + b"\x0c" + struct.pack("<HIBHB", 45, 1024, 0xFD, 0, 0) + b"\x00\x00"


def result(conn, names, values):
    conn.write(lenenc(len(names)))
    for n in names:
        conn.write(column(n))
    eof = b"\xfe" + struct.pack("<HH", 0, AUTOCOMMIT)
    conn.write(eof)
    conn.write(b"".join(lenenc_str(v) for v in values))
    conn.write(eof)


def rsa_decrypt(key, sealed, scramble):
    """caching_sha2_password's RSA exchange as MySQL 8 reads it: OAEP
    (SHA-1), then XOR with the scramble."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    plain = key.decrypt(
        sealed,
        padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None),
    )
    return bytes(b ^ scramble[i % len(scramble)] for i, b in enumerate(plain))


def serve(sock, users, cache, tls, rsa_key):
    conn = Conn(sock)
    scramble = bytes((b % 94) + 33 for b in os.urandom(20))
    caps = (
        LONG_PASSWORD | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH | PLUGIN_AUTH_LENENC
        | CONNECT_WITH_DB | TRANSACTIONS | SSL_FLAG
    )
    greeting = (
        b"\x0a" + b"8.0.40-sha2-test\x00" + struct.pack("<I", 7) + scramble[:8] + b"\x00"
        + struct.pack("<HBHH", caps & 0xFFFF, 45, AUTOCOMMIT, caps >> 16)
        + bytes([21]) + b"\x00" * 10 + scramble[8:] + b"\x00" + PLUGIN + b"\x00"
    )
    try:
        conn.write(greeting)
        packet = conn.read()
        client_caps = struct.unpack("<I", packet[:4])[0]
        encrypted = False
        if len(packet) == 32 and client_caps & SSL_FLAG:
            conn.sock = tls.wrap_socket(conn.sock, server_side=True)
            encrypted = True
            packet = conn.read()
        i = 32
        end = packet.index(b"\x00", i)
        user = packet[i:end].decode()
        i = end + 1
        if client_caps & PLUGIN_AUTH_LENENC:
            n, i = read_lenenc(packet, i)
        else:
            n, i = packet[i], i + 1
        auth = packet[i : i + n]
        password = users.get(user)
        if password is None or not scramble_ok(password, scramble, auth):
            say(f"refused {user} bad scramble")
            conn.write(err(1045, b"28000", f"Access denied for user '{user}'"))
            return
        if user in cache:
            say(f"fast {user}")
            conn.write(b"\x01\x03")
        else:
            conn.write(b"\x01\x04")
            how = "full"
            clear = conn.read()
            if not encrypted:
                if rsa_key is None:
                    say(f"refused {user} full authentication without TLS")
                    conn.write(err(1045, b"28000", "full authentication needs TLS here"))
                    return
                if clear == b"\x02":
                    # The client asks for the key (the gateway never does: it pins it).
                    say(f"refused {user} asked for the public key")
                    return
                clear = rsa_decrypt(rsa_key, clear, scramble)
                how = "full-rsa"
            if clear.rstrip(b"\x00").decode() != password:
                say(f"refused {user} wrong password")
                conn.write(err(1045, b"28000", f"Access denied for user '{user}'"))
                return
            cache.add(user)
            say(f"{how} {user}")
        conn.write(ok())
        while True:
            try:
                packet = conn.read()
            except ConnectionError:
                return
            conn.seq = 1
            command, body = packet[0], packet[1:].decode(errors="replace")
            if command == 0x01:
                return
            if command == 0x0E:
                conn.write(ok())
            elif command == 0x03 and "@@SESSION.sql_mode" in body:
                result(conn, [b"sql_mode", b"cs", b"cc"], [b"", b"utf8mb4", b"utf8mb4"])
            elif command == 0x03:
                value = f"{user}@%" if "CURRENT_USER" in body.upper() else "1"
                result(conn, [b"x"], [value.encode()])
            else:
                conn.write(err(1047, b"08S01", "Unknown command"))
    except (ConnectionError, ssl.SSLError, OSError):
        return
    finally:
        conn.sock.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--rsa-public-out", help="make an RSA key pair, write its public half here")
    p.add_argument("users", nargs="+", metavar="USER=PASSWORD")
    args = p.parse_args()
    rsa_key = None
    if args.rsa_public_out:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with open(args.rsa_public_out, "wb") as f:
            f.write(
                rsa_key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
    users = dict(u.split("=", 1) for u in args.users)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(args.cert, args.key)
    cache = set()

    class Handler(socketserver.BaseRequestHandler):
        def handle(self):
            serve(self.request, users, cache, tls, rsa_key)

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    with socketserver.ThreadingTCPServer(("127.0.0.1", args.port), Handler) as server:
        say("ready")
        server.serve_forever()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
