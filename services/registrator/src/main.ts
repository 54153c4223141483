// Placeholder entry point; replaced by the registrator implementation.
console.log(JSON.stringify({ level: "info", service: "registrator", msg: "not implemented yet" }));
