// Placeholder entry point; replaced by the demo-node implementation.
console.log(JSON.stringify({ level: "info", service: "demo-node", msg: "not implemented yet" }));
