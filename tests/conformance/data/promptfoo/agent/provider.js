// A promptfoo provider for the conformance test: it answers with its test's `reply` var (text), or the
// tool calls of its `calls` var ([[name, argumentsJson], ...]), and the model's finish reason and token
// log-probabilities from its `finish` and `logprobs` vars when the test sets them, as an OpenAI provider's
// response has them.
module.exports = class ScriptedReply {
  constructor(options) {
    this.config = (options && options.config) || {};
  }
  id() {
    return 'scripted-reply';
  }
  async callApi(prompt, context) {
    const vars = context.vars;
    const output = vars.calls
      ? JSON.parse(vars.calls).map(([name, args], i) => ({
          id: `call_${i}`,
          type: 'function',
          function: { name, arguments: args },
        }))
      : vars.reply;
    return {
      output,
      ...(vars.finish ? { finishReason: vars.finish } : {}),
      ...(vars.logprobs ? { logProbs: JSON.parse(vars.logprobs) } : {}),
    };
  }
};
