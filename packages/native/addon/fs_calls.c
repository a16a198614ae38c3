// The file-system calls Node lacks: mknod and the l*xattr family (see ../README.md).
// N-API only, so the same binary loads in any Node whatever headers it was built with.
// Every export exists twice: `name` runs the call at once, `nameAsync` on the libuv
// thread pool and returns a promise. Both go through the same call_t and run().
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/xattr.h>

#include <node_api.h>
#include <uv.h>

typedef enum { OP_MKNOD, OP_LSETXATTR, OP_LGETXATTR, OP_LLISTXATTR, OP_LREMOVEXATTR } op_t;

typedef struct {
  const char *export_name;
  const char *syscall;
  op_t op;
  bool async;
} spec_t;

typedef struct {
  const spec_t *spec;
  char *path;
  char *name;
  char *value; // in: lsetxattr's value; out: lgetxattr's value or llistxattr's names
  size_t size;
  uint32_t mode, major, minor;
  int32_t flags;
  int err; // errno of the failed call, 0 on success
  napi_async_work work;
  napi_deferred deferred;
} call_t;

static void free_call(call_t *c) {
  free(c->path);
  free(c->name);
  free(c->value);
  free(c);
}

// Both reads ask for the size first; the attribute may grow in between (ERANGE): ask again.
static void read_sized(call_t *c) {
  bool get = c->spec->op == OP_LGETXATTR;
  for (;;) {
    ssize_t n = get ? lgetxattr(c->path, c->name, NULL, 0) : llistxattr(c->path, NULL, 0);
    if (n < 0) {
      c->err = errno;
      return;
    }
    free(c->value);
    c->value = malloc(n > 0 ? (size_t)n : 1);
    if (c->value == NULL) {
      c->err = ENOMEM;
      return;
    }
    ssize_t m = get ? lgetxattr(c->path, c->name, c->value, n) : llistxattr(c->path, c->value, n);
    if (m >= 0) {
      c->size = (size_t)m;
      return;
    }
    if (errno != ERANGE) {
      c->err = errno;
      return;
    }
  }
}

// Runs on the calling thread (sync) or a thread-pool thread (async): no N-API calls here.
static void run(call_t *c) {
  int rc = 0;
  switch (c->spec->op) {
  case OP_MKNOD:
    rc = mknod(c->path, c->mode, makedev(c->major, c->minor));
    break;
  case OP_LSETXATTR:
    rc = lsetxattr(c->path, c->name, c->value, c->size, c->flags);
    break;
  case OP_LREMOVEXATTR:
    rc = lremovexattr(c->path, c->name);
    break;
  case OP_LGETXATTR:
  case OP_LLISTXATTR:
    read_sized(c);
    return;
  }
  if (rc != 0) c->err = errno;
}

// An error shaped like fs's: "ENOENT: no such file or directory, mknod '/x'" with code,
// errno (negative, as libuv reports it), syscall and path.
static napi_value make_error(napi_env env, const call_t *c) {
  const char *code = uv_err_name(-c->err);
  char msg[8192]; // a longer path is cut short in the message only
  int len = snprintf(msg, sizeof msg, "%s: %s, %s '%s'", code, uv_strerror(-c->err), c->spec->syscall, c->path);
  if (len >= (int)sizeof msg) len = sizeof msg - 1;
  napi_value js_code, js_msg, error, v;
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &js_code);
  napi_create_string_utf8(env, msg, (size_t)len, &js_msg);
  napi_create_error(env, js_code, js_msg, &error);
  napi_create_int32(env, -c->err, &v);
  napi_set_named_property(env, error, "errno", v);
  napi_create_string_utf8(env, c->spec->syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "syscall", v);
  napi_create_string_utf8(env, c->path, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, error, "path", v);
  return error;
}

// The call's JS result: a Buffer for lgetxattr (undefined when the attribute does not
// exist), the names for llistxattr, undefined otherwise.
static napi_value make_result(napi_env env, const call_t *c) {
  napi_value result;
  if (c->spec->op == OP_LGETXATTR) {
    napi_create_buffer_copy(env, c->size, c->value, NULL, &result);
  } else if (c->spec->op == OP_LLISTXATTR) {
    napi_create_array(env, &result);
    uint32_t i = 0;
    for (size_t at = 0; at < c->size; i++) { // names are NUL-terminated, back to back
      size_t len = strnlen(c->value + at, c->size - at);
      napi_value name;
      napi_create_string_utf8(env, c->value + at, len, &name);
      napi_set_element(env, result, i, name);
      at += len + 1;
    }
  } else {
    napi_get_undefined(env, &result);
  }
  return result;
}

static bool failed(const call_t *c) { return c->err != 0 && !(c->spec->op == OP_LGETXATTR && c->err == ENODATA); }

static napi_value settle_value(napi_env env, const call_t *c) {
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  return c->err == ENODATA ? undefined : make_result(env, c);
}

static void execute_async(napi_env env, void *data) {
  (void)env;
  run(data);
}

static void complete_async(napi_env env, napi_status status, void *data) {
  call_t *c = data;
  if (status == napi_cancelled) c->err = ECANCELED;
  if (failed(c)) {
    napi_reject_deferred(env, c->deferred, make_error(env, c));
  } else {
    napi_resolve_deferred(env, c->deferred, settle_value(env, c));
  }
  napi_delete_async_work(env, c->work);
  free_call(c);
}

static bool get_string(napi_env env, napi_value v, char **out) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return false;
  *out = malloc(len + 1);
  return *out != NULL && napi_get_value_string_utf8(env, v, *out, len + 1, &len) == napi_ok;
}

// Copied, because the caller may change the Buffer while the async call runs.
static bool get_buffer(napi_env env, napi_value v, call_t *c) {
  void *data;
  if (napi_get_buffer_info(env, v, &data, &c->size) != napi_ok) return false;
  c->value = malloc(c->size > 0 ? c->size : 1);
  if (c->value == NULL) return false;
  memcpy(c->value, data, c->size);
  return true;
}

static bool parse_args(napi_env env, napi_value *argv, call_t *c) {
  if (!get_string(env, argv[0], &c->path)) return false;
  switch (c->spec->op) {
  case OP_MKNOD:
    return napi_get_value_uint32(env, argv[1], &c->mode) == napi_ok &&
           napi_get_value_uint32(env, argv[2], &c->major) == napi_ok &&
           napi_get_value_uint32(env, argv[3], &c->minor) == napi_ok;
  case OP_LSETXATTR:
    return get_string(env, argv[1], &c->name) && get_buffer(env, argv[2], c) &&
           napi_get_value_int32(env, argv[3], &c->flags) == napi_ok;
  case OP_LGETXATTR:
  case OP_LREMOVEXATTR:
    return get_string(env, argv[1], &c->name);
  case OP_LLISTXATTR:
    return true;
  }
  return false;
}

static napi_value dispatch(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *spec;
  napi_get_cb_info(env, info, &argc, argv, NULL, &spec);
  call_t *c = calloc(1, sizeof *c);
  if (c == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  c->spec = spec;
  if (!parse_args(env, argv, c)) {
    free_call(c);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "invalid arguments to a @gcfs/native call");
    return NULL;
  }
  napi_value result = NULL;
  if (c->spec->async) {
    napi_value resource;
    napi_create_string_utf8(env, c->spec->export_name, NAPI_AUTO_LENGTH, &resource);
    napi_create_promise(env, &c->deferred, &result);
    napi_create_async_work(env, NULL, resource, execute_async, complete_async, c, &c->work);
    napi_queue_async_work(env, c->work);
    return result;
  }
  run(c);
  if (failed(c)) {
    napi_throw(env, make_error(env, c));
  } else {
    result = settle_value(env, c);
  }
  free_call(c);
  return result;
}

static const spec_t specs[] = {
    {"mknod", "mknod", OP_MKNOD, false},
    {"mknodAsync", "mknod", OP_MKNOD, true},
    {"lsetxattr", "lsetxattr", OP_LSETXATTR, false},
    {"lsetxattrAsync", "lsetxattr", OP_LSETXATTR, true},
    {"lgetxattr", "lgetxattr", OP_LGETXATTR, false},
    {"lgetxattrAsync", "lgetxattr", OP_LGETXATTR, true},
    {"llistxattr", "llistxattr", OP_LLISTXATTR, false},
    {"llistxattrAsync", "llistxattr", OP_LLISTXATTR, true},
    {"lremovexattr", "lremovexattr", OP_LREMOVEXATTR, false},
    {"lremovexattrAsync", "lremovexattr", OP_LREMOVEXATTR, true},
};
#define NSPECS (sizeof specs / sizeof specs[0])

NAPI_MODULE_INIT() {
  napi_property_descriptor props[NSPECS];
  for (size_t i = 0; i < NSPECS; i++) {
    props[i] = (napi_property_descriptor){specs[i].export_name, NULL, dispatch, NULL, NULL, NULL,
                                          napi_enumerable, (void *)&specs[i]};
  }
  napi_define_properties(env, exports, NSPECS, props);
  return exports;
}
