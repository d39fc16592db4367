// Node: the WebSocket transport against the local server (argv: base URL, standard key).
import { talk } from "./agent";

talk("websocket", process.argv[2], process.argv[3]).then(
  (outcome) => {
    process.stdout.write(JSON.stringify(outcome));
    process.exit(0);
  },
  (error: unknown) => {
    process.stderr.write(error instanceof Error ? String(error.stack) : `${String(error)} ${Object.keys(error as object)} ${(error as { message?: string }).message}`);
    process.exit(1);
  },
);
