/* Counts allocator calls for bench/decode.py: preloaded (LD_PRELOAD) into a Python run with
 * PYTHONMALLOC=malloc, so that every object CPython allocates is one malloc/calloc/realloc
 * call here. `big` counts the calls too large for pymalloc (over 512 bytes): the buffers
 * sized by the payload. Not thread-safe: the counting run has one thread. */
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

static unsigned long long calls, big;

unsigned long long pivox_alloc_calls(void) { return calls; }
unsigned long long pivox_alloc_big(void) { return big; }

static void count(size_t size) {
    calls++;
    if (size > 512) big++;
}

void *malloc(size_t size) { count(size); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { count(n * size); return __libc_calloc(n, size); }
void *realloc(void *ptr, size_t size) { count(size); return __libc_realloc(ptr, size); }
