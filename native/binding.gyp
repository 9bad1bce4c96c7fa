{
  "targets": [
    {
      "target_name": "kvm_addon",
      "sources": ["kvm_addon.c"],
      "cflags": ["-std=gnu11", "-Wall", "-Wextra", "-O2"],
      "libraries": ["-lpthread"]
    }
  ]
}
