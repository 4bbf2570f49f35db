"""Reads a partition's segment files the way docs/design/log-format.md draws them, to compare
replicas byte for byte: every batch's base offset, last offset, leader epoch and CRC-32C.

A segment `.log` file is a sequence of RecordBatch v2 batches exactly as on the wire:
base_offset i64 | batch_length i32 | partition_leader_epoch i32 | magic i8 | crc u32 | ...
(batch_length counts the bytes after itself). The last offset is base_offset +
last_offset_delta (i32 at byte 23).
"""

import os
import struct


def _walk(partition_dir):
    """Every whole batch in the partition directory, in offset order, as (segment bytes,
    position of the batch, base_offset, last_offset, leader_epoch, crc); stops a segment at
    the first torn or foreign batch."""
    names = sorted(n for n in os.listdir(partition_dir) if n.endswith(".log"))
    for name in names:
        with open(os.path.join(partition_dir, name), "rb") as segment:
            data = segment.read()
        yield from _walk_bytes(data)


def _walk_bytes(data):
    """The whole batches of one segment file's bytes, as `_walk` yields them."""
    position = 0
    while position + 61 <= len(data):
        base_offset, length, epoch, magic, crc = struct.unpack_from(">qiibI", data, position)
        (last_delta,) = struct.unpack_from(">i", data, position + 23)
        if length <= 0 or position + 12 + length > len(data) or magic != 2:
            break
        yield data, position, base_offset, base_offset + last_delta, epoch, crc
        position += 12 + length


def batches(partition_dir):
    """Every whole batch in the partition directory, in offset order, as
    (base_offset, last_offset, leader_epoch, crc)."""
    return [(base, last, epoch, crc) for _, _, base, last, epoch, crc in _walk(partition_dir)]


def up_to(found, high_watermark):
    """The batches wholly below `high_watermark`."""
    return [b for b in found if b[1] < high_watermark]


def producer_batches(partition_dir):
    """Every whole batch in the partition directory, in offset order, with the idempotent
    producer fields of its header: (base_offset, last_offset, producer_id, producer_epoch,
    base_sequence). producer_id is at byte 43 (i64), producer_epoch at 51 (i16),
    base_sequence at 53 (i32); -1 for a batch written without a producer id."""
    found = []
    for data, position, base, last, _, _ in _walk(partition_dir):
        producer_id, producer_epoch, base_sequence = struct.unpack_from(">qhi", data, position + 43)
        found.append((base, last, producer_id, producer_epoch, base_sequence))
    return found


def batch_locations(partition_dir):
    """Every whole batch in the partition directory, in offset order, as
    (segment path, position of the batch in it, total bytes, base_offset, last_offset)."""
    found = []
    names = sorted(n for n in os.listdir(partition_dir) if n.endswith(".log"))
    for name in names:
        path = os.path.join(partition_dir, name)
        with open(path, "rb") as segment:
            data = segment.read()
        for _, position, base, last, _, _ in _walk_bytes(data):
            (length,) = struct.unpack_from(">i", data, position + 8)
            found.append((path, position, 12 + length, base, last))
    return found


def batch_bytes(partition_dir):
    """{base_offset: the batch's bytes as stored} for every whole batch in the directory."""
    stored = {}
    for path, position, size, base, _ in batch_locations(partition_dir):
        with open(path, "rb") as segment:
            segment.seek(position)
            stored[base] = segment.read(size)
    return stored
