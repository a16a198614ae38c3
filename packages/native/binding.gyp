{
  "targets": [
    {
      "target_name": "gcfs_native",
      "sources": ["addon/fs_calls.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-O2"]
    }
  ]
}
