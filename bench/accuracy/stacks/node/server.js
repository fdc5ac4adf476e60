const express = require("express");

const app = express();
let hits = 0;

app.get("/", (req, res) => {
  hits += 1;
  res.json({ path: req.path, hits });
});

if (process.argv.includes("--check")) {
  console.log("ok");
} else {
  app.listen(8080);
}
