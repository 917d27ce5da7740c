"""proxy_headers - builds PROXY protocol v1 and v2 headers (haproxy's proxy-protocol.txt)
for the integration tests, including TLVs and the CRC32C TLV. Pure functions."""

import socket
import struct

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

PP2_TYPE_ALPN = 0x01
PP2_TYPE_AUTHORITY = 0x02
PP2_TYPE_CRC32C = 0x03
PP2_TYPE_NOOP = 0x04
PP2_TYPE_UNIQUE_ID = 0x05


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C (Castagnoli), as used by the PP2_TYPE_CRC32C TLV."""
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


def v1(proto, src=None, dst=None, sport=None, dport=None):
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def tlv(t, value):
    return struct.pack("!BH", t, len(value)) + value


def v2(command="PROXY", family=None, src=None, dst=None, sport=0, dport=0, tlvs=(),
       crc=False, corrupt_crc=False):
    """command PROXY or LOCAL; family "INET", "INET6" or None (UNSPEC)."""
    ver_cmd = 0x21 if command == "PROXY" else 0x20
    if family == "INET":
        fam = 0x11
        addr = socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst) + \
            struct.pack("!HH", sport, dport)
    elif family == "INET6":
        fam = 0x21
        addr = socket.inet_pton(socket.AF_INET6, src) + \
            socket.inet_pton(socket.AF_INET6, dst) + struct.pack("!HH", sport, dport)
    else:
        fam = 0x00
        addr = b""
    extra = b"".join(tlv(t, v) for t, v in tlvs)
    crc_at = None
    if crc:
        crc_at = len(addr) + len(extra) + 3
        extra += tlv(PP2_TYPE_CRC32C, b"\x00\x00\x00\x00")
    body = addr + extra
    hdr = bytearray(V2_SIG + struct.pack("!BBH", ver_cmd, fam, len(body)) + body)
    if crc:
        value = crc32c(bytes(hdr))
        if corrupt_crc:
            value ^= 0x1
        off = 16 + crc_at
        hdr[off:off + 4] = struct.pack("!I", value)
    return bytes(hdr)
