/**
 * A decider (Jérémie Chassaing's pattern): pure functions from a command and the current state to
 * new events, and from state and an event to the next state. Events here are the `{ eventType,
 * data }` shape that `append` takes; `evolve` receives the recorded events, which extend it.
 */
export interface DomainEvent<TType extends string = string, TData = unknown> {
  readonly eventType: TType;
  readonly data: TData;
}

export interface Decider<TState, TCommand, TEvent extends DomainEvent> {
  decide(command: TCommand, state: TState): TEvent | readonly TEvent[];
  evolve(state: TState, event: TEvent): TState;
  initialState(): TState;
}
