// Links better-sqlite3 against the oldest glibc symbol versions so one build runs on glibc 2.28
// (Kylin V10 SP2) although it is compiled on Debian 12 (glibc 2.36). Each wrapper below is hidden
// and binds to the old version of the same function with .symver; the release gate
// (scripts/release/elf.mjs) checks the result. Built with -DBASE=GLIBC_2.17 (aarch64) or
// GLIBC_2.2.5 (x86-64) and -DSTAT_VER=0 (aarch64) or 1 (x86-64).
#define _GNU_SOURCE
#include <stddef.h>
#include <sys/syscall.h>
#include <unistd.h>

#define STR2(x) #x
#define STR(x) STR2(x)
#define HIDDEN __attribute__((visibility("hidden")))
// OLD(name): declares __kapok_old_<name> bound to name@BASE.
#define OLD(ret, name, params) \
  extern ret __kapok_old_##name params; \
  __asm__(".symver __kapok_old_" #name ", " #name "@" STR(BASE));

struct stat;
typedef struct { int dummy; } pthread_once_t_;

OLD(double, exp, (double))
OLD(double, log, (double))
OLD(double, log2, (double))
OLD(double, pow, (double, double))
HIDDEN double exp(double x) { return __kapok_old_exp(x); }
HIDDEN double log(double x) { return __kapok_old_log(x); }
HIDDEN double log2(double x) { return __kapok_old_log2(x); }
HIDDEN double pow(double x, double y) { return __kapok_old_pow(x, y); }

// Before 2.33, stat64 and friends were inline wrappers over __xstat64 and friends.
OLD(int, __xstat64, (int, const char *, struct stat *))
OLD(int, __lxstat64, (int, const char *, struct stat *))
OLD(int, __fxstat64, (int, int, struct stat *))
HIDDEN int stat64(const char *p, struct stat *b) { return __kapok_old___xstat64(STAT_VER, p, b); }
HIDDEN int lstat64(const char *p, struct stat *b) { return __kapok_old___lxstat64(STAT_VER, p, b); }
HIDDEN int fstat64(int fd, struct stat *b) { return __kapok_old___fxstat64(STAT_VER, fd, b); }
HIDDEN int stat(const char *p, struct stat *b) { return __kapok_old___xstat64(STAT_VER, p, b); }
HIDDEN int lstat(const char *p, struct stat *b) { return __kapok_old___lxstat64(STAT_VER, p, b); }
HIDDEN int fstat(int fd, struct stat *b) { return __kapok_old___fxstat64(STAT_VER, fd, b); }

// glibc 2.34 moved libpthread and libdl into libc under new versions; the old ones remain.
#define PASS(ret, name, params, args) \
  OLD(ret, name, params) \
  HIDDEN ret name params { return __kapok_old_##name args; }
PASS(int, pthread_create, (void *t, const void *a, void *(*f)(void *), void *arg), (t, a, f, arg))
PASS(int, pthread_join, (unsigned long t, void **r), (t, r))
PASS(int, pthread_once, (int *o, void (*f)(void)), (o, f))
PASS(int, pthread_key_create, (unsigned *k, void (*d)(void *)), (k, d))
PASS(int, pthread_key_delete, (unsigned k), (k))
PASS(void *, pthread_getspecific, (unsigned k), (k))
PASS(int, pthread_setspecific, (unsigned k, const void *v), (k, v))
PASS(int, pthread_mutexattr_init, (void *a), (a))
PASS(int, pthread_mutexattr_destroy, (void *a), (a))
PASS(int, pthread_mutexattr_settype, (void *a, int t), (a, t))
PASS(int, pthread_mutex_trylock, (void *m), (m))
PASS(int, pthread_detach, (unsigned long t), (t))
PASS(void *, dlopen, (const char *f, int m), (f, m))
PASS(void *, dlsym, (void *h, const char *s), (h, s))
PASS(int, dlclose, (void *h), (h))
PASS(char *, dlerror, (void), ())
// libstdc++'s gthreads tests this weak symbol to know whether threads are linked in.
HIDDEN int __pthread_key_create(unsigned *k, void (*d)(void *)) { return __kapok_old_pthread_key_create(k, d); }
// GCC 11+ headers read this flag (glibc 2.32) to skip atomics; 0 keeps them, always correct.
HIDDEN char __libc_single_threaded = 0;
// The static libstdc++ (std::random_device) references arc4random (glibc 2.36).
HIDDEN unsigned arc4random(void) {
  unsigned v = 0;
  if (syscall(SYS_getrandom, &v, sizeof v, 0) != (long)sizeof v) v = (unsigned)getpid() * 2654435761u;
  return v;
}
