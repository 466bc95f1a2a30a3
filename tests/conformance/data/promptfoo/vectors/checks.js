module.exports = (output, context) => ({
  pass: output.startsWith('Hello') && context.vars.input === output,
  score: output.startsWith('Hello') ? 1 : 0,
  reason: 'starts with Hello',
});
