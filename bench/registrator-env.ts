// Imported first by the registrator benchmarks: Testcontainers settings this machine
// needs (no Ryuk image, no host-detection image), unless the caller set them.
process.env.TESTCONTAINERS_RYUK_DISABLED ??= "true";
process.env.TESTCONTAINERS_HOST_OVERRIDE ??= "localhost";
