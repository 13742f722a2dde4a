/*
 * guest_writer: the demo VM's application. It writes numbered, checksummed
 * 4 KiB records one after another to a block device, makes each durable
 * (O_DIRECT write, then fdatasync, which the guest kernel turns into a FLUSH
 * that travels through virtio-blk and qemu's NBD client to the mirror), and
 * only then prints one line on the serial console:
 *
 *   ACK seq=N off=BYTES crc=XXXXXXXX us=MICROSECONDS w=WRITER
 *
 * A line printed means the record is on stable storage wherever the storage
 * says so; host-side, verify.py checks that every record the VM printed as
 * acknowledged is on the surviving copy with the right checksum.
 *
 * A write or flush that stalls (the NBD client reconnecting to a new primary)
 * simply blocks; the writer never gives up on a stall. A write or flush that
 * fails is reported loudly ("EIO seq=N ...") and retried, write and flush both
 * (after a failed fdatasync a retried fdatasync alone could succeed without the
 * data being durable); the record is acknowledged only once both succeed.
 *
 * Written in C, not C++ like the rest of cloudkeep, because it must be one
 * small static binary (gcc -static -O2) inside a busybox initramfs: no
 * libstdc++, no shared libraries, nothing from the host at run time.
 *
 * Record layout (little endian), 4096 bytes:
 *   0  magic "CKVMREC1"     8  run id (random per boot)   16 seq
 *   24 byte offset           32 guest CLOCK_MONOTONIC ns   40..4091 payload
 *   4092 CRC-32 (IEEE, as zlib.crc32) of bytes 0..4091
 * Record seq lives in slot (seq - 1) % slots at offset base + slot * 4096.
 *
 * usage: guest_writer DEVICE [INTERVAL_MS [BASE_BYTES [SLOTS [WRITER]]]]
 * SLOTS (default: up to the end of the device) bounds the writer's region, so
 * that several writers (WRITER, a number printed in every line) share one
 * disk, each in its own region: their requests are in flight together, and a
 * failover has several to re-send.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { kRecordSize = 4096, kCrcOffset = kRecordSize - 4 };

static uint32_t crc_table[256];

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    crc_table[i] = c;
  }
}

static uint32_t crc32_ieee(const unsigned char* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = crc_table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

static void put64(unsigned char* p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One line, one write(2): lines never interleave with each other. */
static void say(const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (n > (int)sizeof line - 2) n = (int)sizeof line - 2;
  line[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = write(STDOUT_FILENO, line + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;
    off += (int)w;
  }
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* A run id that tells this boot's records from any other's. Not from
 * /dev/urandom: early in boot that waits for the CRNG (a second or more under
 * TCG); the kernel's boot_id never waits. */
static uint64_t random_run_id(void) {
  uint64_t id = 0xCBF29CE484222325ull; /* FNV-1a over boot_id */
  char buf[64];
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++) id = (id ^ (unsigned char)buf[i]) * 0x100000001B3ull;
    close(fd);
  }
  return id ^ now_ns();
}

static void fill_record(unsigned char* rec, uint64_t run, uint64_t seq, uint64_t off) {
  memcpy(rec, "CKVMREC1", 8);
  put64(rec + 8, run);
  put64(rec + 16, seq);
  put64(rec + 24, off);
  put64(rec + 32, now_ns());
  uint64_t x = run ^ (seq * 0x9E3779B97F4A7C15ull) ^ 0xD1B54A32D192ED03ull;
  for (int i = 40; i < kCrcOffset; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    rec[i] = (unsigned char)x;
  }
  uint32_t c = crc32_ieee(rec, kCrcOffset);
  for (int i = 0; i < 4; i++) rec[kCrcOffset + i] = (unsigned char)(c >> (8 * i));
}

int main(int argc, char** argv) {
  if (argc < 2) {
    say("usage: guest_writer DEVICE [INTERVAL_MS [BASE_BYTES [SLOTS [WRITER]]]]");
    return 2;
  }
  const char* dev = argv[1];
  unsigned interval_ms = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 5;
  uint64_t base = argc > 3 ? strtoull(argv[3], NULL, 10) : 1024 * 1024;
  uint64_t max_slots = argc > 4 ? strtoull(argv[4], NULL, 10) : 0;
  unsigned writer = argc > 5 ? (unsigned)strtoul(argv[5], NULL, 10) : 0;
  base &= ~(uint64_t)(kRecordSize - 1);
  crc_init();

  int fd = open(dev, O_RDWR | O_DIRECT);
  if (fd < 0) {
    say("FATAL open %s: %s", dev, strerror(errno));
    return 1;
  }
  uint64_t size = 0;
  if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
    struct stat st;
    size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
  }
  if (size < base + 16 * kRecordSize) {
    say("FATAL %s: %llu bytes is too small", dev, (unsigned long long)size);
    return 1;
  }
  uint64_t slots = (size - base) / kRecordSize;
  if (max_slots && max_slots < slots) slots = max_slots;
  if (slots < 16) {
    say("FATAL %s: %llu slots is too few w=%u", dev, (unsigned long long)slots, writer);
    return 1;
  }
  unsigned char* rec = NULL;
  if (posix_memalign((void**)&rec, 4096, kRecordSize) != 0) {
    say("FATAL out of memory");
    return 1;
  }
  uint64_t run = random_run_id();
  say("START run=%016llx dev=%s size=%llu base=%llu slots=%llu interval_ms=%u w=%u",
      (unsigned long long)run, dev, (unsigned long long)size, (unsigned long long)base,
      (unsigned long long)slots, interval_ms, writer);

  for (uint64_t seq = 1;; seq++) {
    uint64_t off = base + ((seq - 1) % slots) * kRecordSize;
    fill_record(rec, run, seq, off);
    uint32_t crc = 0;
    for (int i = 0; i < 4; i++) crc |= (uint32_t)rec[kCrcOffset + i] << (8 * i);
    uint64_t t0 = now_ns();
    for (unsigned attempt = 1;; attempt++) {
      ssize_t w = pwrite(fd, rec, kRecordSize, (off_t)off);
      if (w != kRecordSize) {
        int e = w < 0 ? errno : EIO;
        say("EIO seq=%llu op=write errno=%d (%s) attempt=%u w=%u", (unsigned long long)seq, e,
            w < 0 ? strerror(e) : "short write", attempt, writer);
        sleep_ms(200);
        continue;
      }
      if (fdatasync(fd) != 0) {
        int e = errno;
        say("EIO seq=%llu op=fdatasync errno=%d (%s) attempt=%u w=%u", (unsigned long long)seq, e,
            strerror(e), attempt, writer);
        sleep_ms(200);
        continue;
      }
      break;
    }
    uint64_t us = (now_ns() - t0) / 1000;
    say("ACK seq=%llu off=%llu crc=%08x us=%llu w=%u", (unsigned long long)seq,
        (unsigned long long)off, crc, (unsigned long long)us, writer);
    if (us >= 1000000)
      say("STALL seq=%llu waited_ms=%llu w=%u (the disk did not answer; now it does)",
          (unsigned long long)seq, (unsigned long long)(us / 1000), writer);
    if (interval_ms) sleep_ms(interval_ms);
  }
}
