#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { VERSION } from '../core/version.js';
import { auditCommand } from './audit.js';
import { configCommand } from './config.js';
import { demoCommand } from './demo/command.js';
import { deviceCommand } from './device.js';
import { edgeCommand } from './edge.js';
import { EXIT, fail } from './exit.js';
import { gmCommand } from './gm.js';
import { instancesCommand } from './instances.js';
import { jobsCommand } from './jobs.js';
import { keysCommand } from './keys.js';
import { modelsCommand } from './models.js';
import { operatorCommand } from './operator.js';
import { sagaCommand } from './saga.js';
import { upCommand } from './up.js';
import { v2xCommand } from './v2x.js';
import { workerCommand } from './worker.js';

const program = new Command('kapok')
  .description('Kapok: edge-to-cloud AI gateway platform')
  .version(VERSION, '-v, --version')
  .showHelpAfterError()
  .exitOverride();

program.addCommand(upCommand());
program.addCommand(demoCommand());
program.addCommand(configCommand());
program.addCommand(keysCommand());
program.addCommand(gmCommand());
program.addCommand(deviceCommand());
program.addCommand(edgeCommand());
program.addCommand(modelsCommand());
program.addCommand(instancesCommand());
program.addCommand(v2xCommand());
program.addCommand(auditCommand());
program.addCommand(jobsCommand());
program.addCommand(sagaCommand());
program.addCommand(workerCommand());
program.addCommand(operatorCommand());
// Subcommands added as objects do not inherit these settings: apply them down the tree.
const configure = (cmd: Command): void => {
  cmd.exitOverride().showHelpAfterError();
  cmd.commands.forEach(configure);
};
configure(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // --help / --version exit 0; usage mistakes exit 2 like a configuration error.
    process.exit(err.exitCode === 0 ? 0 : EXIT.CONFIG);
  }
  fail(err);
}
