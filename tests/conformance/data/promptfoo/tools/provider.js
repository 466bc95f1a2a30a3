// A promptfoo provider for the conformance test: it answers with the tool calls its test gives in the
// `calls` var ([[name, argumentsJson], ...]), the shape an OpenAI model's tool calls have.
module.exports = class ScriptedTools {
  constructor(options) {
    this.config = (options && options.config) || {};
  }
  id() {
    return 'scripted-tools';
  }
  async callApi(prompt, context) {
    const calls = JSON.parse(context.vars.calls);
    return {
      output: calls.map(([name, args], i) => ({
        id: `call_${i}`,
        type: 'function',
        function: { name, arguments: args },
      })),
    };
  }
};
