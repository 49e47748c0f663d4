// Gives the quiet sidecar's memory back to the system. sidecar/process/memory.ts calls both
// functions when the data path falls quiet; docs/benchmarks.md has the measurements.
//
// trim(): glibc's malloc_trim(0), which Node does not expose. Under load OpenSSL and Node's
// sockets allocate and free megabytes; glibc keeps what was freed (fragmented, so its trim
// threshold, which returns memory only from the top of an arena, does not) and the pages stay
// resident after the load is gone.
//
// dropFilePages(): unmaps the clean file-backed pages of the process's read-only private mappings
// (the Node binary's code and read-only data, the shared libraries). Starting Node touches about
// 47 MiB of its binary, most of it never again (the startup snapshot, the sources of built-in
// modules already compiled, start-up code); those pages stay mapped, and counted in the resident
// set, for the life of the process. MADV_DONTNEED on a clean page of a private file mapping only
// removes this process's mapping of it: the page stays in the page cache, and the next touch
// maps it again from there (a minor fault). What the idle sidecar still uses comes back within a
// second; the rest stays out until a request needs it.
//
// On a private mapping MADV_DONTNEED would also discard a page the process has written (a
// copy-on-write copy, such as the relocated GOT in RELRO): that is data loss, not a release. So
// every page is checked in /proc/self/pagemap first and only pages the kernel reports as
// page-cache pages are dropped. Writable mappings and shared mappings are never touched. Between
// the check and the madvise a page could only turn private if its read-only mapping were made
// writable again and written; nothing in the sidecar does that to a file mapping. The dynamic
// loader writes a library's relocations while the mapping is still writable (skipped here) and
// then protects it, and it loads libraries on the JavaScript thread, the one this runs on.
//
// Node-API only (node_api.h), so the addon does not depend on one Node's V8 ABI.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

// trim(): malloc_trim(0) over every arena; returns whether any memory went back to the system.
// Without glibc (musl has no malloc_trim) it gives nothing back and returns false.
static napi_value Trim(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef __GLIBC__
  const int released = malloc_trim(0) != 0;
#else
  const int released = 0;
#endif
  napi_value result;
  if (napi_get_boolean(env, released, &result) != napi_ok) return NULL;
  return result;
}

// /proc/PID/pagemap: one 64-bit entry per virtual page (Documentation/admin-guide/mm/pagemap.rst).
// The flags are readable without privileges; the frame numbers (not used here) are not.
#define PAGEMAP_PRESENT (UINT64_C(1) << 63)
#define PAGEMAP_FILE_OR_SHARED_ANON (UINT64_C(1) << 61)
#define PAGEMAP_BATCH 512

// One run of consecutive droppable pages, flushed with a single madvise.
struct run {
  uintptr_t start;
  size_t length;
};

static void flush(struct run *run, double *dropped) {
  if (run->length == 0) return;
  // EINVAL (a locked mapping) or EAGAIN leave the pages where they are: nothing is lost.
  if (madvise((void *)run->start, run->length, MADV_DONTNEED) == 0) *dropped += (double)run->length;
  run->length = 0;
}

// Drops the page-cache pages mapped in [start, end); returns -1 (errno set) if pagemap fails.
static int drop_range(int pagemap, uintptr_t start, uintptr_t end, size_t page, double *dropped) {
  uint64_t entries[PAGEMAP_BATCH];
  struct run run = {0, 0};
  for (uintptr_t addr = start; addr < end;) {
    size_t count = (end - addr) / page;
    if (count > PAGEMAP_BATCH) count = PAGEMAP_BATCH;
    ssize_t got = pread(pagemap, entries, count * sizeof entries[0], (off_t)(addr / page * sizeof entries[0]));
    if (got < 0) return -1;
    if ((size_t)got != count * sizeof entries[0]) {
      errno = EIO;
      return -1;
    }
    for (size_t i = 0; i < count; i++, addr += page) {
      const int page_cache = (entries[i] & PAGEMAP_PRESENT) && (entries[i] & PAGEMAP_FILE_OR_SHARED_ANON);
      if (!page_cache) {
        flush(&run, dropped);
        continue;
      }
      if (run.length == 0) run.start = addr;
      run.length += page;
    }
  }
  flush(&run, dropped);
  return 0;
}

static napi_value fail(napi_env env, const char *what, int err) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, message);
  return NULL;
}

// dropFilePages(): the bytes unmapped; throws (naming the file and the error) when
// /proc/self/maps or /proc/self/pagemap cannot be read, having dropped nothing unchecked.
static napi_value DropFilePages(napi_env env, napi_callback_info info) {
  (void)info;
  FILE *maps = fopen("/proc/self/maps", "re");
  if (maps == NULL) return fail(env, "/proc/self/maps", errno);
  int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) {
    int err = errno;
    fclose(maps);
    return fail(env, "/proc/self/pagemap", err);
  }
  const size_t page = (size_t)sysconf(_SC_PAGESIZE);
  double dropped = 0;
  int err = 0;
  char *line = NULL;
  size_t capacity = 0;
  while (getline(&line, &capacity, maps) > 0) {
    unsigned long start, end, inode;
    char perms[5];
    // start-end perms offset dev inode path; the offset and the device are not needed.
    if (sscanf(line, "%lx-%lx %4s %*x %*x:%*x %lu", &start, &end, perms, &inode) != 4) continue;
    // File-backed (anonymous mappings, the heap, the stack and the vDSO have inode 0), not
    // writable, private.
    if (inode == 0 || perms[1] != '-' || perms[3] != 'p') continue;
    if (drop_range(pagemap, start, end, page, &dropped) != 0) {
      err = errno;
      break;
    }
  }
  free(line);
  close(pagemap);
  fclose(maps);
  if (err != 0) return fail(env, "/proc/self/pagemap", err);
  napi_value result;
  if (napi_create_double(env, dropped, &result) != napi_ok) return NULL;
  return result;
}

NAPI_MODULE_INIT(/* env, exports */) {
  napi_value trim;
  if (napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &trim) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trim", trim) != napi_ok) return NULL;
  napi_value drop;
  if (napi_create_function(env, "dropFilePages", NAPI_AUTO_LENGTH, DropFilePages, NULL, &drop) != napi_ok)
    return NULL;
  if (napi_set_named_property(env, exports, "dropFilePages", drop) != napi_ok) return NULL;
  return exports;
}
