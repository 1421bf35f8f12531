"""A ttrpc 1.2 streaming client written from containerd/ttrpc PROTOCOL.md
alone (no billingd code), over Python's ssl module: proof that a peer that
knows only ttrpc can follow a billingd server stream to its end.

Usage: ttrpc_stream_client.py HOST PORT CA CERT KEY SERVER_NAME SERVICE METHOD HEX_PAYLOAD
Prints one line per event: "data <hex>", then "end ok" or "end status <code> <message>".
"""
import socket
import ssl
import struct
import sys

REQUEST, RESPONSE, DATA = 1, 2, 3
REMOTE_CLOSED, NO_DATA = 0x01, 0x02


def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number, value):
    return varint(number << 3 | 2) + varint(len(value)) + value


def read_varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return result, i


def parse_fields(data):
    """Yields (field number, wire type, value) of a protobuf message."""
    i = 0
    while i < len(data):
        key, i = read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = read_varint(data, i)
        elif wire == 2:
            length, i = read_varint(data, i)
            value = data[i:i + length]
            i += length
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wire)
        yield number, wire, value


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def main():
    host, port, ca, cert, key, server_name, service, method, payload_hex = sys.argv[1:10]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(ca)
    context.load_cert_chain(cert, key)
    raw = socket.create_connection((host, int(port)), timeout=10)
    sock = context.wrap_socket(raw, server_hostname=server_name)

    # Request{service=1, method=2, payload=3}; flags: remote closed (we send no data).
    request = field_bytes(1, service.encode()) + field_bytes(2, method.encode()) + field_bytes(3, bytes.fromhex(payload_hex))
    stream_id = 1
    sock.sendall(struct.pack(">IIBB", len(request), stream_id, REQUEST, REMOTE_CLOSED) + request)

    while True:
        length, sid, mtype, flags = struct.unpack(">IIBB", recv_exact(sock, 10))
        body = recv_exact(sock, length)
        if sid != stream_id:
            continue
        if mtype == DATA:
            if not (flags & REMOTE_CLOSED and flags & NO_DATA):
                print("data " + body.hex(), flush=True)
            if flags & REMOTE_CLOSED:
                print("end ok", flush=True)
                return
        elif mtype == RESPONSE:
            code, message = 0, ""
            for number, _, value in parse_fields(body):
                if number == 1:  # status
                    for n2, _, v2 in parse_fields(value):
                        if n2 == 1:
                            code = v2
                        elif n2 == 2:
                            message = v2.decode()
            print("end ok" if code == 0 else "end status %d %s" % (code, message), flush=True)
            return


if __name__ == "__main__":
    main()
