def get_assert(output, context)
  words = output.split.length
  { 'pass' => words <= context['config']['max_words'], 'score' => 0.5, 'reason' => "#{words} words" }
end
