/*
 * The /dev/kvm binding of the kvm backend (vmm/kvm/): the few system calls node cannot make
 * itself, and nothing else. Every decision (register layout, exits, debug state) is in
 * TypeScript; this file only opens, ioctls, maps and runs vCPU threads.
 *
 * - ioctl(fd, request, buffer): the caller builds the struct bytes (offsets and sizes come
 *   from `constants`, taken from <linux/kvm.h> at build time).
 * - Guest RAM and each vCPU's kvm_run page are mmap'd and handed to JS as external
 *   ArrayBuffers: KVM and node share the same bytes, nothing is copied.
 * - One pthread per vCPU runs KVM_RUN so that node's event loop never blocks in it; JS
 *   starts a vCPU, waits for any vCPU to come back (bounded), and kicks running vCPUs out
 *   of the guest with kvm_run.immediate_exit + a signal to that thread.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_VCPUS 64

typedef struct {
  int used;
  int fd;
  struct kvm_run *run;
  size_t run_size;
  pthread_t thread;
  int go;        /* JS asked it to enter KVM_RUN */
  int in_run;    /* between go and done */
  int done;      /* came back, not yet collected by waitAny */
  int quit;
  int result;    /* 0 or -errno of the last KVM_RUN */
  pthread_cond_t cv;
} vcpu_t;

static vcpu_t vcpus[MAX_VCPUS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv;
static int kick_signal;
static int initialized;

static void on_kick(int sig) { (void)sig; /* only interrupts KVM_RUN */ }

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static int get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < want) {
    napi_throw_type_error(env, NULL, "wrong number of arguments");
    return 0;
  }
  return 1;
}

static int arg_i64(napi_env env, napi_value v, int64_t *out) {
  if (napi_get_value_int64(env, v, out) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a number");
    return 0;
  }
  return 1;
}

static napi_value num(napi_env env, double d) {
  napi_value v;
  napi_create_double(env, d, &v);
  return v;
}

static void init_once(void) {
  if (initialized) return;
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&done_cv, &ca);
  /* A real-time signal nothing else in node uses; no SA_RESTART so KVM_RUN returns EINTR. */
  kick_signal = SIGRTMIN + 6;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_kick;
  sigemptyset(&sa.sa_mask);
  sigaction(kick_signal, &sa, NULL);
  initialized = 1;
}

/* open(path) -> fd; throws with the errno text. */
static napi_value js_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  char path[256];
  size_t len;
  if (napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected a path");
    return NULL;
  }
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return throw_errno(env, path, errno);
  return num(env, fd);
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t fd;
  if (!get_args(env, info, 1, argv) || !arg_i64(env, argv[0], &fd)) return NULL;
  close((int)fd);
  return NULL;
}

/* ioctl(fd, request, arg): arg is a number (passed as the integer argument) or a
 * TypedArray/ArrayBuffer (passed as a pointer to its bytes). Returns the result or -errno. */
static napi_value js_ioctl(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  int64_t fd, req;
  if (!get_args(env, info, 3, argv) || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &req)) return NULL;
  napi_valuetype t;
  napi_typeof(env, argv[2], &t);
  int r;
  if (t == napi_number) {
    int64_t a;
    if (!arg_i64(env, argv[2], &a)) return NULL;
    r = ioctl((int)fd, (unsigned long)req, (unsigned long)a);
  } else {
    void *data = NULL;
    size_t bytes = 0;
    bool is_ta = false, is_ab = false;
    napi_is_typedarray(env, argv[2], &is_ta);
    napi_is_arraybuffer(env, argv[2], &is_ab);
    if (is_ta) {
      napi_typedarray_type tt;
      size_t n, off;
      napi_value ab;
      napi_get_typedarray_info(env, argv[2], &tt, &n, &data, &ab, &off);
    } else if (is_ab) {
      napi_get_arraybuffer_info(env, argv[2], &data, &bytes);
    } else {
      napi_throw_type_error(env, NULL, "ioctl argument: a number or a typed array");
      return NULL;
    }
    r = ioctl((int)fd, (unsigned long)req, data);
  }
  return num(env, r < 0 ? -errno : r);
}

static void unmap_finalizer(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/* mapAnonymous(size) -> ArrayBuffer over fresh zeroed memory (guest RAM, page tables). */
static napi_value js_map_anonymous(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  int64_t size;
  if (!get_args(env, info, 1, argv) || !arg_i64(env, argv[0], &size)) return NULL;
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return throw_errno(env, "mmap guest memory", errno);
  napi_value ab;
  if (napi_create_external_arraybuffer(env, p, (size_t)size, unmap_finalizer, (void *)(uintptr_t)size, &ab) != napi_ok) {
    munmap(p, (size_t)size);
    napi_throw_error(env, NULL, "cannot wrap guest memory");
    return NULL;
  }
  return ab;
}

/* setMemoryRegion(vmFd, slot, guestPhys, arrayBuffer) -> 0 or -errno. */
static napi_value js_set_memory_region(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int64_t fd, slot, gpa;
  if (!get_args(env, info, 4, argv) || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &slot) ||
      !arg_i64(env, argv[2], &gpa)) return NULL;
  void *data;
  size_t bytes;
  if (napi_get_arraybuffer_info(env, argv[3], &data, &bytes) != napi_ok) {
    napi_throw_type_error(env, NULL, "expected an ArrayBuffer from mapAnonymous");
    return NULL;
  }
  struct kvm_userspace_memory_region r;
  memset(&r, 0, sizeof r);
  r.slot = (uint32_t)slot;
  r.guest_phys_addr = (uint64_t)gpa;
  r.memory_size = bytes;
  r.userspace_addr = (uint64_t)(uintptr_t)data;
  int rc = ioctl((int)fd, KVM_SET_USER_MEMORY_REGION, &r);
  return num(env, rc < 0 ? -errno : 0);
}

static void *vcpu_thread(void *arg) {
  vcpu_t *v = arg;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kick_signal);
  pthread_sigmask(SIG_UNBLOCK, &set, NULL);
  pthread_mutex_lock(&lock);
  for (;;) {
    while (!v->go && !v->quit) pthread_cond_wait(&v->cv, &lock);
    if (v->quit) break;
    v->go = 0;
    pthread_mutex_unlock(&lock);
    int r = ioctl(v->fd, KVM_RUN, 0);
    int err = errno;
    pthread_mutex_lock(&lock);
    v->result = r < 0 ? -err : 0;
    v->in_run = 0;
    v->done = 1;
    pthread_cond_broadcast(&done_cv);
  }
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* addVcpu(vcpuFd, runMmapSize) -> {index, run: ArrayBuffer over kvm_run}; starts its thread. */
static napi_value js_add_vcpu(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t fd, size;
  if (!get_args(env, info, 2, argv) || !arg_i64(env, argv[0], &fd) || !arg_i64(env, argv[1], &size)) return NULL;
  init_once();
  int idx = -1;
  pthread_mutex_lock(&lock);
  for (int i = 0; i < MAX_VCPUS; i++) if (!vcpus[i].used) { idx = i; break; }
  if (idx >= 0) { memset(&vcpus[idx], 0, sizeof vcpus[idx]); vcpus[idx].used = 1; }
  pthread_mutex_unlock(&lock);
  if (idx < 0) { napi_throw_error(env, NULL, "too many vCPUs in this process"); return NULL; }
  vcpu_t *v = &vcpus[idx];
  void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, (int)fd, 0);
  if (p == MAP_FAILED) { v->used = 0; return throw_errno(env, "mmap kvm_run", errno); }
  v->fd = (int)fd;
  v->run = p;
  v->run_size = (size_t)size;
  pthread_cond_init(&v->cv, NULL);
  int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
  if (rc != 0) { munmap(p, (size_t)size); v->used = 0; return throw_errno(env, "pthread_create", rc); }
  napi_value obj, ab;
  napi_create_object(env, &obj);
  /* The kvm_run page stays mapped until removeVcpu; no finalizer may unmap it earlier. */
  napi_create_external_arraybuffer(env, p, (size_t)size, NULL, NULL, &ab);
  napi_set_named_property(env, obj, "index", num(env, idx));
  napi_set_named_property(env, obj, "run", ab);
  return obj;
}

static vcpu_t *vcpu_arg(napi_env env, napi_value a) {
  int64_t i;
  if (!arg_i64(env, a, &i)) return NULL;
  if (i < 0 || i >= MAX_VCPUS || !vcpus[i].used) { napi_throw_range_error(env, NULL, "no such vCPU handle"); return NULL; }
  return &vcpus[i];
}

/* start(handle, immediateExit): the vCPU's thread enters KVM_RUN. immediateExit = 1 only
 * completes a pending I/O or MMIO instruction and comes back at once. */
static napi_value js_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int64_t immediate;
  if (!get_args(env, info, 2, argv)) return NULL;
  vcpu_t *v = vcpu_arg(env, argv[0]);
  if (!v || !arg_i64(env, argv[1], &immediate)) return NULL;
  pthread_mutex_lock(&lock);
  if (v->in_run || v->done) {
    pthread_mutex_unlock(&lock);
    napi_throw_error(env, NULL, "vCPU already running");
    return NULL;
  }
  v->run->immediate_exit = immediate ? 1 : 0;
  v->go = 1;
  v->in_run = 1;
  pthread_cond_signal(&v->cv);
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* With `lock` held: a vCPU inside KVM_RUN leaves it at the next instruction boundary. */
static void kick_locked(vcpu_t *v) {
  if (!v->in_run) return;
  v->run->immediate_exit = 1;
  __sync_synchronize();
  pthread_kill(v->thread, kick_signal);
}

/* kick(handle): make a running vCPU leave KVM_RUN at the next instruction boundary. */
static napi_value js_kick(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  vcpu_t *v = vcpu_arg(env, argv[0]);
  if (!v) return NULL;
  pthread_mutex_lock(&lock);
  kick_locked(v);
  pthread_mutex_unlock(&lock);
  return NULL;
}

/* waitAny(timeoutMs) -> [handle, result] of a vCPU that came back, or null after the timeout.
 * Blocks node for at most timeoutMs. */
static napi_value js_wait_any(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  double ms;
  if (!get_args(env, info, 1, argv)) return NULL;
  if (napi_get_value_double(env, argv[0], &ms) != napi_ok) { napi_throw_type_error(env, NULL, "expected ms"); return NULL; }
  struct timespec dl;
  clock_gettime(CLOCK_MONOTONIC, &dl);
  if (ms < 0) ms = 0;
  long long ns = (long long)(ms * 1e6);
  dl.tv_sec += ns / 1000000000LL;
  dl.tv_nsec += ns % 1000000000LL;
  if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
  pthread_mutex_lock(&lock);
  for (;;) {
    for (int i = 0; i < MAX_VCPUS; i++) {
      if (vcpus[i].used && vcpus[i].done) {
        vcpus[i].done = 0;
        int result = vcpus[i].result;
        pthread_mutex_unlock(&lock);
        napi_value arr;
        napi_create_array_with_length(env, 2, &arr);
        napi_set_element(env, arr, 0, num(env, i));
        napi_set_element(env, arr, 1, num(env, result));
        return arr;
      }
    }
    if (pthread_cond_timedwait(&done_cv, &lock, &dl) == ETIMEDOUT) {
      /* one last look, then give up */
      int found = 0;
      for (int i = 0; i < MAX_VCPUS; i++) if (vcpus[i].used && vcpus[i].done) found = 1;
      if (!found) break;
    }
  }
  pthread_mutex_unlock(&lock);
  napi_value nul;
  napi_get_null(env, &nul);
  return nul;
}

/* removeVcpu(handle): stops its thread (the vCPU must not be running) and unmaps kvm_run. */
static napi_value js_remove_vcpu(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  vcpu_t *v = vcpu_arg(env, argv[0]);
  if (!v) return NULL;
  pthread_mutex_lock(&lock);
  kick_locked(v);
  v->quit = 1;
  pthread_cond_signal(&v->cv);
  pthread_mutex_unlock(&lock);
  pthread_join(v->thread, NULL);
  munmap(v->run, v->run_size);
  pthread_mutex_lock(&lock);
  v->used = 0;
  pthread_mutex_unlock(&lock);
  return NULL;
}

#define CONST(name) napi_set_named_property(env, c, #name, num(env, (double)(name)))
#define CONSTV(name, value) napi_set_named_property(env, c, name, num(env, (double)(value)))

static napi_value constants(napi_env env) {
  napi_value c;
  napi_create_object(env, &c);
  CONST(KVM_GET_API_VERSION); CONST(KVM_CREATE_VM); CONST(KVM_CREATE_VCPU); CONST(KVM_GET_VCPU_MMAP_SIZE);
  CONST(KVM_CHECK_EXTENSION); CONST(KVM_GET_SUPPORTED_CPUID); CONST(KVM_SET_CPUID2);
  CONST(KVM_GET_REGS); CONST(KVM_SET_REGS); CONST(KVM_GET_SREGS); CONST(KVM_SET_SREGS);
  CONST(KVM_GET_DEBUGREGS); CONST(KVM_SET_DEBUGREGS); CONST(KVM_SET_GUEST_DEBUG);
  CONST(KVM_INTERRUPT); CONST(KVM_GET_VCPU_EVENTS); CONST(KVM_SET_VCPU_EVENTS);
  CONST(KVM_GET_MSRS); CONST(KVM_SET_MSRS);
  CONST(KVM_GET_XSAVE); CONST(KVM_SET_XSAVE); CONST(KVM_TRANSLATE);
  CONST(KVM_CAP_SET_GUEST_DEBUG); CONST(KVM_CAP_DEBUGREGS); CONST(KVM_CAP_IMMEDIATE_EXIT);
  CONST(KVM_EXIT_IO); CONST(KVM_EXIT_DEBUG); CONST(KVM_EXIT_HLT); CONST(KVM_EXIT_MMIO);
  CONST(KVM_EXIT_IRQ_WINDOW_OPEN); CONST(KVM_EXIT_SHUTDOWN); CONST(KVM_EXIT_FAIL_ENTRY);
  CONST(KVM_EXIT_INTR); CONST(KVM_EXIT_INTERNAL_ERROR); CONST(KVM_EXIT_UNKNOWN); CONST(KVM_EXIT_EXCEPTION);
  CONST(KVM_GUESTDBG_ENABLE); CONST(KVM_GUESTDBG_SINGLESTEP); CONST(KVM_GUESTDBG_USE_SW_BP);
  CONST(KVM_GUESTDBG_USE_HW_BP); CONST(KVM_GUESTDBG_INJECT_DB); CONST(KVM_GUESTDBG_INJECT_BP);
  CONST(EINTR); CONST(EAGAIN); CONST(E2BIG);
  /* struct sizes and offsets the TypeScript side builds and reads */
  CONSTV("sizeof_kvm_regs", sizeof(struct kvm_regs));
  CONSTV("sizeof_kvm_sregs", sizeof(struct kvm_sregs));
  CONSTV("sizeof_kvm_segment", sizeof(struct kvm_segment));
  CONSTV("sizeof_kvm_debugregs", sizeof(struct kvm_debugregs));
  CONSTV("sizeof_kvm_guest_debug", sizeof(struct kvm_guest_debug));
  CONSTV("sizeof_kvm_cpuid_entry2", sizeof(struct kvm_cpuid_entry2));
  CONSTV("sizeof_kvm_vcpu_events", sizeof(struct kvm_vcpu_events));
  CONSTV("sizeof_kvm_xsave", sizeof(struct kvm_xsave));
  CONSTV("sizeof_kvm_translation", sizeof(struct kvm_translation));
  CONSTV("off_sregs_gdt", offsetof(struct kvm_sregs, gdt));
  CONSTV("off_sregs_cr0", offsetof(struct kvm_sregs, cr0));
  CONSTV("off_run_exit_reason", offsetof(struct kvm_run, exit_reason));
  CONSTV("off_run_request_interrupt_window", offsetof(struct kvm_run, request_interrupt_window));
  CONSTV("off_run_ready_for_interrupt_injection", offsetof(struct kvm_run, ready_for_interrupt_injection));
  CONSTV("off_run_if_flag", offsetof(struct kvm_run, if_flag));
  CONSTV("off_run_io_direction", offsetof(struct kvm_run, io.direction));
  CONSTV("off_run_io_size", offsetof(struct kvm_run, io.size));
  CONSTV("off_run_io_port", offsetof(struct kvm_run, io.port));
  CONSTV("off_run_io_count", offsetof(struct kvm_run, io.count));
  CONSTV("off_run_io_data_offset", offsetof(struct kvm_run, io.data_offset));
  CONSTV("off_run_mmio_phys_addr", offsetof(struct kvm_run, mmio.phys_addr));
  CONSTV("off_run_mmio_is_write", offsetof(struct kvm_run, mmio.is_write));
  CONSTV("off_run_debug_exception", offsetof(struct kvm_run, debug.arch.exception));
  CONSTV("off_run_debug_pc", offsetof(struct kvm_run, debug.arch.pc));
  CONSTV("off_run_debug_dr6", offsetof(struct kvm_run, debug.arch.dr6));
  CONSTV("off_run_debug_dr7", offsetof(struct kvm_run, debug.arch.dr7));
  CONSTV("off_run_fail_entry_reason", offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason));
  CONSTV("off_run_internal_suberror", offsetof(struct kvm_run, internal.suberror));
  CONSTV("off_guest_debug_debugreg", offsetof(struct kvm_guest_debug, arch.debugreg));
  CONSTV("off_debugregs_dr6", offsetof(struct kvm_debugregs, dr6));
  CONSTV("off_debugregs_dr7", offsetof(struct kvm_debugregs, dr7));
  return c;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
    { "open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL },
    { "close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL },
    { "ioctl", NULL, js_ioctl, NULL, NULL, NULL, napi_default, NULL },
    { "mapAnonymous", NULL, js_map_anonymous, NULL, NULL, NULL, napi_default, NULL },
    { "setMemoryRegion", NULL, js_set_memory_region, NULL, NULL, NULL, napi_default, NULL },
    { "addVcpu", NULL, js_add_vcpu, NULL, NULL, NULL, napi_default, NULL },
    { "removeVcpu", NULL, js_remove_vcpu, NULL, NULL, NULL, napi_default, NULL },
    { "start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL },
    { "kick", NULL, js_kick, NULL, NULL, NULL, napi_default, NULL },
    { "waitAny", NULL, js_wait_any, NULL, NULL, NULL, napi_default, NULL },
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  napi_set_named_property(env, exports, "constants", constants(env));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
