// Placeholder entry point; replaced by the templater implementation.
console.log(JSON.stringify({ level: "info", service: "templater", msg: "not implemented yet" }));
